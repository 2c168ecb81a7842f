-- One change to one user's cart, atomic on the master (a script runs alone).
-- KEYS[1]: the cart, a hash: product id -> "quantity:stamp", "op:<change id>" -> ms of recent
--   changes, and "claim" -> "since ms|product:quantity:stamp,...|idempotency key" while a checkout
--   holds the cart. A line's stamp is the id of the change that created or last set it; adding
--   keeps it, so a settle tells "added to since the claim" (keeps the addition) from "replaced".
-- ARGV: kind (add|set|remove|clear|claim|settle|release), change id, now (ms), keep (ms),
--       product id, quantity, max quantity of a line, max lines of a cart, idempotency key.
-- Reply: {"done", product, quantity, ...} (the cart after the change), or {"absent"} (remove of a
-- line that is not there), {"too_many"} (quantity limit), {"too_many_lines"} (line limit),
-- {"held", product, quantity, ...} (claim: the lines the key now holds; "holding" when it held
-- them already), {"busy", key, since ms}
-- (claim: another key holds the cart); a refusal writes nothing.
local key = KEYS[1]
local kind, op, now, keep = ARGV[1], 'op:' .. ARGV[2], ARGV[3], tonumber(ARGV[4])
local product, qty = ARGV[5], tonumber(ARGV[6])
local max_qty, max_lines = tonumber(ARGV[7]), tonumber(ARGV[8])
local checkout = ARGV[9]

local fields = redis.call('HGETALL', key)
local lines, stamps, count, seen, expired, claim = {}, {}, 0, false, {}, nil
for i = 1, #fields, 2 do
  local f, v = fields[i], fields[i + 1]
  if string.sub(f, 1, 3) == 'op:' then
    if f == op then
      seen = true
    elseif tonumber(v) + keep < tonumber(now) then
      expired[#expired + 1] = f
    end
  elseif f == 'claim' then
    claim = v
  else
    local q, s = string.match(v, '^(%d+):?(.*)$')
    lines[f] = tonumber(q)
    stamps[f] = s
    count = count + 1
  end
end

local function reply(status, held)
  local out = {status}
  for p, q in pairs(held) do
    out[#out + 1] = p
    out[#out + 1] = tostring(q)
  end
  return out
end

local function write_line(p)
  redis.call('HSET', key, p, tostring(lines[p]) .. ':' .. stamps[p])
end

-- The claim's parts: since, held lines {product -> {quantity, stamp}}, key.
local function parse_claim()
  local since, held_text, holder = string.match(claim, '^(%d+)|([^|]*)|(.*)$')
  local held = {}
  for p, q, s in string.gmatch(held_text, '([^:,]+):(%d+):([^,]*)') do
    held[p] = {tonumber(q), s}
  end
  return since, held, holder
end

if seen and (kind == 'add' or kind == 'set' or kind == 'remove' or kind == 'clear') then
  -- An earlier attempt of this very call was applied (its answer was lost). Apply nothing, but
  -- write the id again: the caller's WAIT then also covers the earlier attempt's write.
  -- (Claims, settles and releases are safe to repeat as they are.)
  redis.call('HSET', key, op, now)
  return reply('done', lines)
end

local status = 'done'
local out = lines
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
  if kind == 'set' or current == nil then
    stamps[product] = ARGV[2]
  end
  write_line(product)
  redis.call('HSET', key, op, now)
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
  out = lines
  redis.call('HSET', key, op, now)
elseif kind == 'claim' then
  if claim ~= nil then
    local since, held, holder = parse_claim()
    if holder ~= checkout then
      return {'busy', holder, since}
    end
    out = {}
    for p, h in pairs(held) do
      out[p] = h[1]
    end
    status = 'holding'
  elseif count > 0 then
    local parts = {}
    for p, q in pairs(lines) do
      parts[#parts + 1] = p .. ':' .. tostring(q) .. ':' .. stamps[p]
    end
    redis.call('HSET', key, 'claim', now .. '|' .. table.concat(parts, ',') .. '|' .. checkout)
    status = 'held'
  else
    status = 'held'
  end
  redis.call('HSET', key, op, now)
elseif kind == 'settle' or kind == 'release' then
  if claim ~= nil then
    local _, held, holder = parse_claim()
    if holder == checkout then
      if kind == 'settle' then
        for p, h in pairs(held) do
          if lines[p] ~= nil and stamps[p] == h[2] then
            local left = lines[p] - h[1]
            if left > 0 then
              lines[p] = left
              write_line(p)
            else
              lines[p] = nil
              redis.call('HDEL', key, p)
            end
          end
        end
      end
      redis.call('HDEL', key, 'claim')
    end
  end
  redis.call('HSET', key, op, now)
else
  return redis.error_reply('unknown cart change ' .. tostring(kind))
end

if #expired > 0 then
  redis.call('HDEL', key, unpack(expired))
end
-- An empty cart's key holds only recent change ids (and maybe a claim with nothing left to
-- remove): let it vanish once they are no longer needed.
if next(lines) == nil then
  redis.call('PEXPIRE', key, keep)
else
  redis.call('PERSIST', key)
end
return reply(status, out)
