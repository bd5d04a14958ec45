-- wrk script: POST /v1/check to warden and verify every response.
-- The request shape of the Cerbos peer (../shared/peers/cerbos/check.lua): one principal (a
-- service-account token), two actions on one resource (company c1), sent as a batch of two
-- checks: view (expected allowed) and update (expected denied by the account's policy).
-- Counts non-200 answers and 200 answers whose decisions are wrong, and prints one
-- "RESULT ..." line in done(), in the same format as the Cerbos peer's script.
--
-- Env: WARDEN_BENCH_TOKENS  file with one plaintext token per line (bench/seed_main.cc).
--      WARDEN_BENCH_ROTATE=1 every request uses the next token of the file, starting at line
--                            WARDEN_BENCH_OFFSET+1 (default 0); with wrk -t1 (one Lua state,
--                            one counter) N requests cover min(N, #tokens) distinct tokens.
--                            With -tT set WARDEN_BENCH_THREADS=T: thread t sends t, t+T, ...
--                            Default: every request uses the first token (a static body, like
--                            the Cerbos script, so the client does the same work for both).
local tokens_file = os.getenv("WARDEN_BENCH_TOKENS") or error("set WARDEN_BENCH_TOKENS")
local rotate = os.getenv("WARDEN_BENCH_ROTATE") == "1"

local tokens = {}
for line in io.lines(tokens_file) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
assert(#tokens > 0, "no tokens in " .. tokens_file)

local function body_for(token)
  return '{"token":"' .. token .. '","checks":['
      .. '{"model":"company","action":"view","resource":{"id":"c1"}},'
      .. '{"model":"company","action":"update","resource":{"id":"c1"}}],'
      .. '"context":{"request_id":"bench-1","method":"GET","path":"/companies/c1"}}'
end

wrk.method = "POST"
wrk.path   = "/v1/check"
wrk.headers["Content-Type"] = "application/json"
wrk.body   = body_for(tokens[1])

local threads = {}
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads - 1)
  table.insert(threads, thread)
end

non200 = 0
bad = 0
ok = 0
local sent = 0
local stride = tonumber(os.getenv("WARDEN_BENCH_THREADS") or "1") or 1
local offset = tonumber(os.getenv("WARDEN_BENCH_OFFSET") or "0") or 0

if rotate then
  function request()
    -- Thread t sends tokens t, t+T, t+2T, ... (T = wrk threads, from WARDEN_BENCH_THREADS).
    local i = (offset + tid + sent * stride) % #tokens + 1
    sent = sent + 1
    return wrk.format(nil, nil, nil, body_for(tokens[i]))
  end
end

-- nlohmann::json prints object keys sorted, so each result starts "action", "allowed".
function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif body:find('"action":"view","allowed":true', 1, true)
      and body:find('"action":"update","allowed":false', 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local n200, nbad, nok = 0, 0, 0
  for _, t in ipairs(threads) do
    n200 = n200 + t:get("non200")
    nbad = nbad + t:get("bad")
    nok = nok + t:get("ok")
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d ok=%d non200=%d wrong_decision=%d sock_err=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    nok, n200, nbad, e.connect + e.read + e.write + e.timeout))
end
