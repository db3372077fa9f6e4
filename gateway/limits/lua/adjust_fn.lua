-- Shared by reserve.lua and adjust.lua (Python prepends it to both).
--
-- Storage: a rate counter is one string "tat_requests tat_tokens tat_cost" with a PX expiry;
-- a spend counter is one string "spend tokens requests" with an EXAT expiry. Plain strings
-- take two commands per counter (GET, SET with expiry) where hashes took five.
--
-- rate entry:  {window_s, limit_requests, limit_tokens, limit_cost (-1: none), amount x3}
-- spend entry: {period_end, expire_at, floor spend/tokens/requests, cap (-1: none),
--               add x3, add_if_missing x3}
local FMT = '%.17g'

local function read3(key)
  local v = redis.call('GET', key)
  if not v then return nil end
  local a, b, c = string.match(v, '(%S+) (%S+) (%S+)')
  return {tonumber(a), tonumber(b), tonumber(c)}
end

local function write_rate(key, tats, now)
  local latest = math.max(tats[1], tats[2], tats[3])
  redis.call('SET', key, string.format('%.17g %.17g %.17g', tats[1], tats[2], tats[3]),
    'PX', math.ceil((latest - now) * 1000) + 1000)
end

local function write_spend(key, v, expire_at)
  redis.call('SET', key, string.format('%.17g %.17g %.17g', v[1], v[2], v[3]), 'EXAT', math.ceil(expire_at))
end

-- Reconciliation deltas, applied without checks. A refund never leaves credit beyond a full
-- bucket; a spend counter that is missing (lost with a Redis restart) starts from its floor
-- and takes add_if_missing instead of the delta.
local function apply_adjust(now, rates, spends, k)
  for _, c in ipairs(rates) do
    local w = c[1]
    local tats = read3(KEYS[k]) or {now, now, now}
    local changed = false
    for d = 1, 3 do
      if tats[d] < now then tats[d] = now end
      local limit, amount = c[1 + d], c[4 + d]
      if limit > 0 and amount ~= 0 then
        tats[d] = math.max(now, tats[d] + amount * w / limit)
        changed = true
      end
    end
    if changed then write_rate(KEYS[k], tats, now) end
    k = k + 1
  end
  for _, s in ipairs(spends) do
    local v = read3(KEYS[k])
    if v then
      v = {v[1] + s[7], v[2] + s[8], v[3] + s[9]}
    else
      v = {s[3] + s[10], s[4] + s[11], s[5] + s[12]}
    end
    write_spend(KEYS[k], v, s[2])
    k = k + 1
  end
  return k
end
