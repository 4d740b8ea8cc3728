-- wrk script: every request is a new study session with its own id (so nothing is a duplicate).
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  token = os.getenv("BENCH_TOKEN")
  math.randomseed(os.time() + tid)
  prefix = string.format("%08x", math.random(0, 0x7fffffff))
end

function request()
  counter = counter + 1
  local id = string.format("%s-%04x-4%03x-8%03x-%012x", prefix, tid, counter % 4096, math.random(0, 4095), counter)
  local body = string.format(
    '{"id":"%s","tag":"cka","minutes":%d,"user_id":"u%d","source":"wrk"}', id, 1 + counter % 60, counter % 1000)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
