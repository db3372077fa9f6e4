-- Check every counter of one request and apply all of them or none (see backend.py), after
-- applying the reconciliations queued since the last call (they ride along: no extra trip).
-- ARGV[1] = JSON {now, r: [rate entries], s: [spend entries], ar: [...], as: [...]}
-- KEYS: r's counters, s's counters, then ar's and as's.
-- Returns one string: "allowed kind index dimension retry_after denied_spend tat..." with
-- kind 0 none, 1 rate, 2 spend; three TATs per rate counter, "-" where it has no limit.
local p = cjson.decode(ARGV[1])
local now = p.now
local n_rate = #p.r
apply_adjust(now, p.ar, p.as, n_rate + #p.s + 1)

local kind, index, dim, retry, spent = 0, 0, 0, 0, 0
local proposed = {}
for i, c in ipairs(p.r) do
  local w = c[1]
  local new = read3(KEYS[i]) or {now, now, now}
  for d = 1, 3 do
    if new[d] < now then new[d] = now end
    local limit, amount = c[1 + d], c[4 + d]
    if limit >= 0 and amount > 0 then
      if limit == 0 then
        if kind == 0 then kind, index, dim, retry = 1, i, d, w end
      else
        local tat = new[d] + amount * w / limit
        if tat - now > w and kind == 0 then kind, index, dim, retry = 1, i, d, tat - now - w end
        new[d] = tat
      end
    end
  end
  proposed[i] = new
end
local totals = {}
for j, s in ipairs(p.s) do
  local v = read3(KEYS[n_rate + j]) or {s[3], s[4], s[5]}
  totals[j] = v
  local cap, add = s[6], s[7]
  if cap >= 0 and kind == 0 and (v[1] >= cap or v[1] + add > cap) then
    kind, index, dim, retry, spent = 2, j, 0, s[1] - now, v[1]
  end
end

local out = {kind == 0 and 1 or 0, kind, index, dim, string.format(FMT, retry), string.format(FMT, spent)}
for i, c in ipairs(p.r) do
  if kind == 0 then
    write_rate(KEYS[i], proposed[i], now)
  else
    -- Refused: report the counters as they stand, without this request.
    local stored = read3(KEYS[i]) or {now, now, now}
    for d = 1, 3 do proposed[i][d] = math.max(stored[d], now) end
  end
  for d = 1, 3 do
    out[#out + 1] = c[1 + d] >= 0 and string.format(FMT, proposed[i][d]) or '-'
  end
end
if kind == 0 then
  for j, s in ipairs(p.s) do
    local v = totals[j]
    write_spend(KEYS[n_rate + j], {v[1] + s[7], v[2] + s[8], v[3] + s[9]}, s[2])
  end
end
return table.concat(out, ' ')
