-- Apply queued reconciliations. ARGV[1] = JSON {now, ar: [rate entries], as: [spend entries]};
-- KEYS: the rate counters, then the spend counters, in that order.
local p = cjson.decode(ARGV[1])
apply_adjust(p.now, p.ar, p.as, 1)
return 1
