package redis

// gcraLua is engine/state/internal/gcra.Limit.Decide in Lua (86400000000 is gcra.MaxRetryUS). It returns {allowed, tat, frac,
// ttl, retry, remaining}. Every value stays below 2^53, so Lua's doubles are exact, and
// math.floor of a quotient of two such integers is the integer quotient.
const gcraLua = `
local function gcra(now, tat, frac, L, P, B)
  local window = B * P
  local diff = 0
  local clamped = false
  local d = tat - now
  if d >= 0 then
    if frac >= L then frac = L - 1 end
    if d > math.floor(window / L) then
      diff, clamped = window, true
    else
      diff = d * L + frac
      if diff > window then diff, clamped = window, true end
    end
  end
  local maxDiff = window - P
  if diff > maxDiff then
    if clamped then
      local q = -1
      if maxDiff >= frac then q = math.floor((maxDiff - frac) / L) end
      return {0, 0, 0, 0, math.min(d - q, 86400000000), 0}
    end
    return {0, 0, 0, 0, math.floor((diff - maxDiff + L - 1) / L), 0}
  end
  local nxt = diff + P
  local q = math.floor(nxt / L)
  return {1, now + q, nxt - q * L, math.floor((nxt + L - 1) / L), 0, math.floor((window - nxt) / P)}
end
`

// admitLua: KEYS = [dedupe key if mode has 1] [rate key if mode has 2];
// ARGV = mode, L, P, B, claim ttl ms, claim token. Returns {dedupe status, limited, retry µs,
// remaining} with the status numbered as state.DedupeStatus. A claim is stored as "f:" and
// its token (a delivered key as "d"), so that only its own Admit's release drops it.
const admitLua = gcraLua + `
local mode = tonumber(ARGV[1])
local dkey, rkey
if mode == 1 or mode == 3 then dkey = KEYS[1] end
if mode == 2 then rkey = KEYS[1] elseif mode == 3 then rkey = KEYS[2] end
if dkey then
  local v = redis.call('GET', dkey)
  if v == 'd' then return {3, 0, 0, 0} end
  if v then return {2, 0, 0, 0} end
end
local remaining = 0
if rkey then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tat, frac = 0, 0
  local s = redis.call('GET', rkey)
  if s then
    local a, b = string.match(s, '^(%d+) (%d+)$')
    if a then tat, frac = tonumber(a), tonumber(b) end
  end
  local r = gcra(now, tat, frac, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
  if r[1] == 0 then return {0, 1, r[5], 0} end
  redis.call('SET', rkey, string.format('%.0f %.0f', r[2], r[3]), 'PX', math.ceil(r[4] / 1000))
  remaining = r[6]
end
if dkey then
  redis.call('SET', dkey, 'f:' .. ARGV[6], 'PX', tonumber(ARGV[5]))
  return {1, 0, 0, remaining}
end
return {0, 0, 0, remaining}
`

// releaseLua deletes KEYS[1] only while it is an in-flight claim, never a delivered marker:
// with ARGV[1] (a claim token), only the claim of that token; without, any claim ("f" is the
// claim of a gateway of an earlier version).
const releaseLua = `
local v = redis.call('GET', KEYS[1])
if not v or v == 'd' then return 0 end
if ARGV[1] then
  if v ~= 'f:' .. ARGV[1] then return 0 end
elseif v ~= 'f' and string.sub(v, 1, 2) ~= 'f:' then
  return 0
end
return redis.call('DEL', KEYS[1])
`
