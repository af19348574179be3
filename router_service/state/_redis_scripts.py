"""The Lua scripts behind RedisStateStore: each decision is one script, atomic on the server.

Conventions shared by every script:
- time is the caller's clock (`now`, epoch seconds, ARGV) so that replicas and the memory store
  read deadlines the same way; a ManualClock moves Redis state as it moves memory state;
- numbers are written with `%.17g` (Lua numbers are the same doubles as Python floats), so the
  arithmetic, and therefore every decision, is bit for bit the memory store's;
- every key written gets a PEXPIRE a little past the last instant it can matter (`slack_ms`), so
  a key nobody touches again disappears on its own. Logical expiry is always the stored time
  compared with `now`; the Redis TTL is only the backstop that keeps memory bounded.
"""

from __future__ import annotations

_PRELUDE = """
local function num(x) return string.format('%.17g', x) end
local function expire_at(key, last, now, slack_ms)
  local ms = math.ceil((last - now) * 1000) + slack_ms
  if ms < slack_ms then ms = slack_ms end
  redis.call('PEXPIRE', key, ms)
end
local function expire_to_last(key, now, slack_ms)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then expire_at(key, tonumber(last[2]), now, slack_ms) end
end
"""

# KEYS: slots (zset lease -> expiry), rate (hash w r t pr pt), then the `unless` deadlines
# ARGV: now, ttl_s, max_in_flight|'', rpm|'', tpm|'', tokens, lease_id, window_s, slack_ms
# -> {granted 0|1, retry_after_s (string), window, each `unless` deadline in force or '0',
#     then with rpm or tpm: the rate windows as left (r, t, pr, pt: strings, exact)}
ACQUIRE = (
    _PRELUDE
    + """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local max_in_flight, rpm, tpm = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tokens, window_s, slack = tonumber(ARGV[6]), tonumber(ARGV[8]), tonumber(ARGV[9])
local found, blocked = {}, false
for i = 3, #KEYS do
  local untl = redis.call('GET', KEYS[i])
  if untl and tonumber(untl) > now then
    found[#found + 1], blocked = untl, true
  else
    found[#found + 1] = '0'
  end
end
local function reply(granted, retry_after, window, counts)
  local out = {granted, retry_after, window}
  for _, untl in ipairs(found) do out[#out + 1] = untl end
  for _, count in ipairs(counts or {}) do out[#out + 1] = count end
  return out
end
if blocked then return reply(0, '0', 0) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now))
if max_in_flight and redis.call('ZCARD', KEYS[1]) >= max_in_flight then
  return reply(0, '0', 0)
end
local window = math.floor(now / window_s)
local counts = nil
if rpm or tpm then
  local r = redis.call('HMGET', KEYS[2], 'w', 'r', 't', 'pr', 'pt')
  local w = tonumber(r[1]) or window
  -- A replica whose clock is a little ahead began the next minute: count there (written back,
  -- both minutes were lost), as the stores' `rate_window` says.
  if w == window + 1 then window = w end
  local req, tok = tonumber(r[2]) or 0, tonumber(r[3]) or 0
  local preq, ptok = tonumber(r[4]) or 0, tonumber(r[5]) or 0
  if w ~= window then
    if window == w + 1 then preq, ptok = req, tok else preq, ptok = 0, 0 end
    req, tok = 0, 0
  end
  local share = math.min(1.0, math.max(0.0, 1.0 - (now - window * window_s) / window_s))
  local sreq, stok = preq * share + req, ptok * share + tok
  local over_rpm = rpm and sreq + 1 > rpm
  local over_tpm = tpm and stok > 0 and stok + tokens > tpm
  local over = over_rpm or over_tpm
  if not over then req, tok = req + 1, tok + tokens end
  counts = {num(req), num(tok), num(preq), num(ptok)}
  redis.call('HSET', KEYS[2], 'w', num(window), 'r', counts[1], 't', counts[2],
    'pr', counts[3], 'pt', counts[4])
  expire_at(KEYS[2], (window + 2) * window_s, now, slack)
  if over then
    -- state/_windows.py sliding_wait, step for step (the stores answer the same float).
    local function wait(prev, cur, limit, need)
      local start = window * window_s
      local room = limit - need - cur
      if room >= 0 and prev > 0 then
        return math.max(0.0, start + window_s * (1 - room / prev) - now)
      end
      local following = start + window_s
      room = math.max(0.0, limit - need)
      if cur <= 0 or room >= cur then return math.max(0.0, following - now) end
      return following + window_s * (1 - room / cur) - now
    end
    local retry = 0.001
    if over_rpm then retry = math.max(retry, wait(preq, req, rpm, 1)) end
    if over_tpm then retry = math.max(retry, wait(ptok, tok, tpm, tokens)) end
    return reply(0, num(retry), window, counts)
  end
end
redis.call('ZADD', KEYS[1], num(now + ttl), ARGV[7])
expire_to_last(KEYS[1], now, slack)
return reply(1, '0', window, counts)
"""
)

# KEYS: source slots, source rate, target slots, target rate. ARGV: now, window_s, slack_ms,
# the lease ids' prefix of the replica moving them (another's are left where it releases them).
MOVE_SLOTS = (
    _PRELUDE
    + """
local now, window_s, slack, mine = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local held = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES')
for i = 1, #held, 2 do
  if string.sub(held[i], 1, #mine) == mine then
    redis.call('ZADD', KEYS[3], held[i + 1], held[i])
    redis.call('ZREM', KEYS[1], held[i])
  end
end
expire_to_last(KEYS[3], now, slack)
local window = math.floor(now / window_s)
local source = redis.call('HMGET', KEYS[2], 'w', 'r', 't', 'pr', 'pt')
local target = redis.call('HMGET', KEYS[4], 'w', 'r', 't', 'pr', 'pt')
-- A minute a replica whose clock is a little ahead began is the one both go in (`rate_window`).
if tonumber(source[1]) == window + 1 or tonumber(target[1]) == window + 1 then
  window = window + 1
end
local function rolled(r)
  local w = tonumber(r[1])
  local req, tok = tonumber(r[2]) or 0, tonumber(r[3]) or 0
  if w == window then return {req, tok, tonumber(r[4]) or 0, tonumber(r[5]) or 0} end
  if w and w + 1 == window then return {0, 0, req, tok} end
  return {0, 0, 0, 0}
end
local from, into = rolled(source), rolled(target)
redis.call('DEL', KEYS[2])
if from[1] + from[2] + from[3] + from[4] > 0 then
  redis.call('HSET', KEYS[4], 'w', num(window), 'r', num(from[1] + into[1]),
    't', num(from[2] + into[2]), 'pr', num(from[3] + into[3]), 'pt', num(from[4] + into[4]))
  expire_at(KEYS[4], (window + 2) * window_s, now, slack)
end
return 1
"""
)

# KEYS: slots. ARGV: now, lease_id, ttl_s, slack_ms -> 1 renewed (its expiry never earlier than
# it was) | 0 not held (released, or expired by the callers' clock)
RENEW = (
    _PRELUDE
    + """
local now = tonumber(ARGV[1])
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
if not expiry or expiry <= now then return 0 end
local untl = now + tonumber(ARGV[3])
if untl > expiry then
  redis.call('ZADD', KEYS[1], num(untl), ARGV[2])
  expire_to_last(KEYS[1], now, tonumber(ARGV[4]))
end
return 1
"""
)

# KEYS: rate. ARGV: window, delta, requests. Corrects the tokens of the window a grant was
# counted in, and counts there the calls made under it besides its own (negative: calls it
# counted that were never made). ARGV[4] "1" (a current minute), ARGV[5] its TTL in ms: windows
# older than `window` (or none) are rolled to it first, as a grant at that minute rolls them.
ADD_TOKENS = (
    _PRELUDE
    + """
local r = redis.call('HMGET', KEYS[1], 'w', 't', 'pt', 'r', 'pr')
local w = tonumber(r[1])
local window, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
local requests = tonumber(ARGV[3]) or 0
if ARGV[4] == '1' and (not w or w < window) then
  -- Rolled to `window` first (memory's _Rate.roll): a usage counted in the minute it came.
  local adjacent = w == window - 1
  redis.call('HSET', KEYS[1], 'w', num(window), 't', num(math.max(0.0, delta)),
    'r', num(math.max(0.0, requests)), 'pt', adjacent and (r[2] or '0') or '0',
    'pr', adjacent and (r[4] or '0') or '0')
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
  return 1
end
if not w then return 0 end
if w == window then
  redis.call('HSET', KEYS[1], 't', num(math.max(0.0, (tonumber(r[2]) or 0) + delta)))
  if requests ~= 0 then
    redis.call('HSET', KEYS[1], 'r', num(math.max(0.0, (tonumber(r[4]) or 0) + requests)))
  end
elseif w == window + 1 then
  redis.call('HSET', KEYS[1], 'pt', num(math.max(0.0, (tonumber(r[3]) or 0) + delta)))
  if requests ~= 0 then
    redis.call('HSET', KEYS[1], 'pr', num(math.max(0.0, (tonumber(r[5]) or 0) + requests)))
  end
end
return 1
"""
)

# KEYS: deadline (string), its last clear (string: when). ARGV: until (the caller's exact
# repr), now, slack_ms, decided_at|'' (a write decided before the last clear does not land).
# -> the deadline in force, as stored (a string, exact).
EXTEND_DEADLINE = (
    _PRELUDE
    + """
local current = redis.call('GET', KEYS[1])
local untl = tonumber(ARGV[1])
if ARGV[4] ~= '' then
  local cleared = redis.call('GET', KEYS[2])
  if cleared and tonumber(cleared) > tonumber(ARGV[4]) then return current or '0' end
end
if (current and tonumber(current) or 0) >= untl then return current or '0' end
local ms = math.ceil((untl - tonumber(ARGV[2])) * 1000) + tonumber(ARGV[3])
if ms > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ms) end
return ARGV[1]
"""
)

# KEYS: deadline, its last clear (string: when). ARGV: only the deadline stored as this|'',
# when the clear was decided, for how many ms it is remembered from now
# -> 1 cleared | 0 not (another deadline is in force: nor is the clear remembered).
CLEAR_DEADLINE = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' and current and current ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
local before = redis.call('GET', KEYS[2])
if before and tonumber(before) >= tonumber(ARGV[2]) then return 1 end
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
return 1
"""

# Groups: KEYS: tokens (zset "token\\nmember" -> expiry), counts (hash member -> live tokens).
# Expired marks are pruned first, their members' counts taken down with them.
_PRUNE_GROUP = """
local function prune(now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', num(now))
  for _, entry in ipairs(gone) do
    local member = string.sub(entry, string.find(entry, '\\n', 1, true) + 1)
    if redis.call('HINCRBY', KEYS[2], member, -1) <= 0 then
      redis.call('HDEL', KEYS[2], member)
    end
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now)) end
end
"""

# ARGV: now, member, token, limit|'', ttl_s, slack_ms -> 1 admitted | 0 refused
ENTER = (
    _PRELUDE
    + _PRUNE_GROUP
    + """
local now, member, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[4])
prune(now)
if limit and redis.call('HEXISTS', KEYS[2], member) == 0
    and redis.call('HLEN', KEYS[2]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], num(now + tonumber(ARGV[5])), ARGV[3] .. '\\n' .. member)
redis.call('HINCRBY', KEYS[2], member, 1)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
expire_at(KEYS[1], tonumber(last[2]), now, tonumber(ARGV[6]))
expire_at(KEYS[2], tonumber(last[2]), now, tonumber(ARGV[6]))
return 1
"""
)

# ARGV: member, token
LEAVE = """
if redis.call('ZREM', KEYS[1], ARGV[2] .. '\\n' .. ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[1])
  end
end
return 1
"""

# ARGV: now -> flat [member, count, ...]
MEMBERS = (
    _PRELUDE
    + _PRUNE_GROUP
    + """
prune(tonumber(ARGV[1]))
return redis.call('HGETALL', KEYS[2])
"""
)

# KEYS: fields (hash "bucket|field" -> total), index (zset bucket -> expiry)
# ARGV: now, bucket, ttl_s, slack_ms, field1, value1, field2, value2, ...
ADD_TO_BUCKET = (
    _PRELUDE
    + """
local now, bucket, slack = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[4])
for i = 5, #ARGV, 2 do
  local field = bucket .. '|' .. ARGV[i]
  local total = (tonumber(redis.call('HGET', KEYS[1], field)) or 0) + tonumber(ARGV[i + 1])
  redis.call('HSET', KEYS[1], field, num(total))
end
redis.call('ZADD', KEYS[2], num(now + tonumber(ARGV[3])), bucket)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', num(now))
if #gone > 0 then
  local dead = {}
  for _, b in ipairs(gone) do dead[b] = true end
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if dead[string.sub(field, 1, string.find(field, '|', 1, true) - 1)] then
      redis.call('HDEL', KEYS[1], field)
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', num(now))
end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then
  expire_at(KEYS[1], tonumber(last[2]), now, slack)
  expire_at(KEYS[2], tonumber(last[2]), now, slack)
end
return 1
"""
)

# KEYS: document (string "expiry|data"). ARGV: entry, px, now.
# -> 1 written; 0 not: the key holds a document still live by the callers' clock (its stored
# expiry, read from the entry's head only; Redis's own TTL ends a little later, SLACK_MS).
PUT_NEW_DOCUMENT = """
local expiry = string.match(redis.call('GETRANGE', KEYS[1], 0, 63), '^([^|]*)|')
if expiry and tonumber(expiry) and tonumber(expiry) > tonumber(ARGV[3]) then return 0 end
if ARGV[2] == '' then redis.call('SET', KEYS[1], ARGV[1]) else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
"""

# KEYS: document. ARGV: data, now, size, head, new expiry, px ("": no TTL; "keep": the expiry
# and the TTL it has, the new expiry unused) -> 1 replaced;
# 0 not: no document live by the callers' clock, or its data is not `size` bytes beginning
# with `head` (a compare-and-swap: appended to, or rewritten, since the caller read it).
REPLACE_DOCUMENT = """
local expiry = string.match(redis.call('GETRANGE', KEYS[1], 0, 63), '^([^|]*)|')
if not (expiry and tonumber(expiry) and tonumber(expiry) > tonumber(ARGV[2])) then return 0 end
local at = #expiry + 1
if redis.call('STRLEN', KEYS[1]) - at ~= tonumber(ARGV[3]) then return 0 end
if #ARGV[4] > 0 and redis.call('GETRANGE', KEYS[1], at, at + #ARGV[4] - 1) ~= ARGV[4] then
  return 0
end
local pttl = redis.call('PTTL', KEYS[1])
if ARGV[6] == 'keep' and pttl > 0 then
  redis.call('SET', KEYS[1], expiry .. '|' .. ARGV[1], 'PX', pttl)
elseif ARGV[6] == 'keep' then redis.call('SET', KEYS[1], expiry .. '|' .. ARGV[1])
elseif ARGV[6] == '' then redis.call('SET', KEYS[1], ARGV[5] .. '|' .. ARGV[1]) else
  redis.call('SET', KEYS[1], ARGV[5] .. '|' .. ARGV[1], 'PX', ARGV[6]) end
return 1
"""

# KEYS: document (string "expiry|data"). ARGV: data, now, max_bytes (of the data, not the head)
# -> 1 appended (the key keeps its TTL); 0 not: no document live by the callers' clock; -1 not:
# it would pass max_bytes.
APPEND_DOCUMENT = """
local expiry = string.match(redis.call('GETRANGE', KEYS[1], 0, 63), '^([^|]*)|')
if not (expiry and tonumber(expiry) and tonumber(expiry) > tonumber(ARGV[2])) then return 0 end
local size = redis.call('STRLEN', KEYS[1]) - #expiry - 1
if size + #ARGV[1] > tonumber(ARGV[3]) then return -1 end
redis.call('APPEND', KEYS[1], ARGV[1])
return 1
"""

# KEYS: a document. ARGV: now, start, max bytes -> {part, size}; nil when absent or expired.
READ_DOCUMENT = """
local expiry = string.match(redis.call('GETRANGE', KEYS[1], 0, 63), '^([^|]*)|')
if not (expiry and tonumber(expiry) and tonumber(expiry) > tonumber(ARGV[1])) then return nil end
local head = #expiry + 1
local size = redis.call('STRLEN', KEYS[1]) - head
local start, count = tonumber(ARGV[2]), tonumber(ARGV[3])
if start >= size or count <= 0 then return {'', size} end
return {redis.call('GETRANGE', KEYS[1], head + start, head + start + count - 1), size}
"""

# KEYS: a flight's lease (string "expiry|token"). ARGV: entry, px, now
# -> {1}: claimed; {0, holder's token, its expiry}: a lease live by the callers' clock holds it.
CLAIM_FLIGHT = """
local held = redis.call('GET', KEYS[1])
if held then
  local expiry, holder = string.match(held, '^([^|]*)|(.*)$')
  if expiry and tonumber(expiry) and tonumber(expiry) > tonumber(ARGV[3]) then
    return {0, holder, expiry}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
"""

# KEYS: a flight's lease. ARGV: token, channel, notice ("landing|token|name")
# -> how many subscribers heard the notice. The lease goes only when `token` owns it.
LAND_FLIGHT = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '^[^|]*|(.*)$') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return redis.call('PUBLISH', ARGV[2], ARGV[3])
"""
