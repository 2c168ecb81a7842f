-- One change to one user's cart, atomic on the master (a script runs alone).
-- KEYS[1]: the cart, a hash: product id -> quantity, and "op:<change id>" -> ms of recent changes.
-- ARGV: kind (add|set|remove|clear), change id, now (ms), keep (ms), product id, quantity,
--       max quantity of a line, max lines of a cart.
-- Reply: {"done", product, quantity, ...} (the cart after the change), or {"absent"} (remove of a
-- line that is not there), {"too_many"} (quantity limit), {"too_many_lines"} (line limit);
-- a refusal writes nothing.
local key = KEYS[1]
local kind, op, now, keep = ARGV[1], 'op:' .. ARGV[2], ARGV[3], tonumber(ARGV[4])
local product, qty = ARGV[5], tonumber(ARGV[6])
local max_qty, max_lines = tonumber(ARGV[7]), tonumber(ARGV[8])

local fields = redis.call('HGETALL', key)
local lines, count, seen, expired = {}, 0, false, {}
for i = 1, #fields, 2 do
  local f, v = fields[i], fields[i + 1]
  if string.sub(f, 1, 3) == 'op:' then
    if f == op then
      seen = true
    elseif tonumber(v) + keep < tonumber(now) then
      expired[#expired + 1] = f
    end
  else
    lines[f] = tonumber(v)
    count = count + 1
  end
end

local function cart()
  local out = {'done'}
  for p, q in pairs(lines) do
    out[#out + 1] = p
    out[#out + 1] = tostring(q)
  end
  return out
end

if seen then
  -- An earlier attempt of this very call was applied (its answer was lost). Apply nothing, but
  -- write the id again: the caller's WAIT then also covers the earlier attempt's write.
  redis.call('HSET', key, op, now)
  return cart()
end

local current = lines[product]
if kind == 'add' or kind == 'set' then
  if current == nil and count >= max_lines then
    return {'too_many_lines'}
  end
  local wanted = qty
  if kind == 'add' then
    wanted = (current or 0) + qty
  end
  if wanted > max_qty then
    return {'too_many'}
  end
  lines[product] = wanted
  redis.call('HSET', key, product, tostring(wanted), op, now)
elseif kind == 'remove' then
  if current == nil then
    return {'absent'}
  end
  lines[product] = nil
  redis.call('HDEL', key, product)
  redis.call('HSET', key, op, now)
elseif kind == 'clear' then
  local names = {}
  for p in pairs(lines) do
    names[#names + 1] = p
  end
  if #names > 0 then
    redis.call('HDEL', key, unpack(names))
  end
  lines = {}
  redis.call('HSET', key, op, now)
else
  return redis.error_reply('unknown cart change ' .. tostring(kind))
end

if #expired > 0 then
  redis.call('HDEL', key, unpack(expired))
end
-- An empty cart's key holds only recent change ids: let it vanish once they are no longer needed.
if next(lines) == nil then
  redis.call('PEXPIRE', key, keep)
else
  redis.call('PERSIST', key)
end
return cart()
