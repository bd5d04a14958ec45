-- wrk script: POST /v1/check to warden in a chosen traffic shape and verify every response.
-- The default is the request shape of the Cerbos peer (../shared/peers/cerbos/check.lua): one
-- principal (a service-account token), two actions on one resource (company c1): view
-- (expected allowed) and update (expected denied by the account's policy).
-- Prints one "RESULT ..." line in done(), in the format of the Cerbos peer's script, plus the
-- counts the decision-log check needs (good= 200s with a valid token, badtok= 200s with a bad
-- one, batch=), and s503= (the non-200s that were 503, e.g. the decision log over its bound).
--
-- Env: WARDEN_BENCH_TOKENS   file with one plaintext token per line, account by account
--                            (bench/seed_main.cc): tokens of account k are lines
--                            k*TPA+1 .. (k+1)*TPA.
--      WARDEN_BENCH_TPA      tokens per account in that file (default 1)
--      WARDEN_BENCH_SHAPE    one      every request with the first token (a static body)
--                            uniform  a uniformly random account of the first
--                                     WARDEN_BENCH_ACCOUNTS, a random token of it
--                            zipf     account k (1-based) with weight 1/k^1.1 over
--                                     WARDEN_BENCH_ACCOUNTS, a random token of it
--      WARDEN_BENCH_ACCOUNTS accounts to draw from (default: every account of the file)
--      WARDEN_BENCH_BAD_TOKENS file of well-formed tokens nobody holds, and
--      WARDEN_BENCH_BAD_PERCENT that share of requests uses one of them (default 0)
--      WARDEN_BENCH_BATCH    checks per request: view, update, view, ... (default 2)
--      WARDEN_BENCH_ROTATE=1 (old name) = WARDEN_BENCH_SHAPE=rotate: token i, i+1, ... in turn
--      WARDEN_BENCH_STOP_AFTER=N  a thread that has N answers stops and ends the run (SIGINT
--                            to wrk, which then reports at once, its duration ending ~10 ms
--                            later): with one thread and N = the token count, one pass
local tokens_file = os.getenv("WARDEN_BENCH_TOKENS") or error("set WARDEN_BENCH_TOKENS")
local shape = os.getenv("WARDEN_BENCH_SHAPE") or (os.getenv("WARDEN_BENCH_ROTATE") == "1" and "rotate" or "one")
local tpa = tonumber(os.getenv("WARDEN_BENCH_TPA") or "1")
local batch = tonumber(os.getenv("WARDEN_BENCH_BATCH") or "2")
local bad_percent = tonumber(os.getenv("WARDEN_BENCH_BAD_PERCENT") or "0")

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end
local tokens = read_lines(tokens_file)
assert(#tokens > 0, "no tokens in " .. tokens_file)
local accounts = tonumber(os.getenv("WARDEN_BENCH_ACCOUNTS") or tostring(math.floor(#tokens / tpa)))
assert(accounts * tpa <= #tokens, "WARDEN_BENCH_ACCOUNTS x TPA exceeds the tokens file")
local bad_tokens = {}
if bad_percent > 0 then bad_tokens = read_lines(os.getenv("WARDEN_BENCH_BAD_TOKENS") or error("set WARDEN_BENCH_BAD_TOKENS")) end

-- The checks of one request, and what a right answer holds for a valid token.
local checks = {}
local views = 0
for i = 1, batch do
  local action = (i % 2 == 1) and "view" or "update"
  if action == "view" then views = views + 1 end
  checks[#checks + 1] = '{"model":"company","action":"' .. action .. '","resource":{"id":"c' .. i .. '"}}'
end
local checks_json = table.concat(checks, ",")
local updates = batch - views

local function body_for(token)
  return '{"token":"' .. token .. '","checks":[' .. checks_json .. '],'
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
s503 = 0
bad = 0
ok = 0
good = 0
badtok = 0
local sent = 0
local stride = tonumber(os.getenv("WARDEN_BENCH_THREADS") or "1") or 1
local offset = tonumber(os.getenv("WARDEN_BENCH_OFFSET") or "0") or 0
local stop_after = tonumber(os.getenv("WARDEN_BENCH_STOP_AFTER") or "0") or 0
local answered = 0

-- Zipf(1.1) over `accounts`: the cumulative weights, searched by bisection.
local cdf = nil
if shape == "zipf" then
  cdf = {}
  local total = 0
  for k = 1, accounts do
    total = total + 1 / (k ^ 1.1)
    cdf[k] = total
  end
  for k = 1, accounts do cdf[k] = cdf[k] / total end
end
local function zipf_account()
  local u = math.random()
  local lo, hi = 1, accounts
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- The token of the next request in a spread (uniform, zipf, zipf-bad).
local function draw_token()
  if bad_percent > 0 and math.random() * 100 < bad_percent then
    return bad_tokens[math.random(#bad_tokens)]
  end
  local k = shape == "zipf" and zipf_account() or math.random(accounts)
  return tokens[(k - 1) * tpa + math.random(tpa)]
end

-- Every shape but rotate sends requests drawn before the run (WARDEN_BENCH_DRAWS per thread,
-- 2^18 by default, about what a thread sends in a 15 s run; then they are sent again in the
-- same order), and one costs wrk the same per request as the spreads: one Lua call and a
-- table read. Drawing and formatting a Zipf request while the run was on cost wrk several
-- microseconds of CPU on the two cores it shares with the server, while one's static body
-- cost wrk nothing, so the spreads measured the client as well as the server
-- (docs/benchmarks.md, session 11).
local draws = tonumber(os.getenv("WARDEN_BENCH_DRAWS") or "262144")
local drawn = {}
local next_draw = 0
if shape == "rotate" then
  function request()
    local token = tokens[(offset + tid + sent * stride) % #tokens + 1]
    sent = sent + 1
    return wrk.format(nil, nil, nil, body_for(token))
  end
else
  function request()
    next_draw = next_draw % #drawn + 1
    return drawn[next_draw]
  end
end

function init(args)
  math.randomseed(os.time() * 100 + (tid or 0))
  if shape == "one" then
    drawn[1] = wrk.format(nil, nil, nil, body_for(tokens[1]))
  elseif shape ~= "rotate" then
    for i = 1, draws do drawn[i] = wrk.format(nil, nil, nil, body_for(draw_token())) end
  end
end

local function count(body, pattern)
  local n = 0
  local from = 1
  while true do
    local s, e = body:find(pattern, from, true)
    if not s then return n end
    n = n + 1
    from = e + 1
  end
end

-- nlohmann::json prints object keys sorted, so each result starts "action", "allowed".
function response(status, headers, body)
  if stop_after > 0 then
    answered = answered + 1
    if answered == stop_after then
      wrk.thread:stop()
      -- wrk sleeps for -d and wakes on SIGINT; system() ignores SIGINT in wrk while it runs,
      -- so the shell sends it 10 ms after returning ($PPID, also in the subshell: wrk).
      os.execute("(sleep 0.01; kill -INT $PPID) &")
    end
  end
  if status ~= 200 then
    non200 = non200 + 1
    if status == 503 then s503 = s503 + 1 end
  elseif count(body, '"reason":"TOKEN_INVALID"') == batch and count(body, '"allowed":true') == 0 then
    ok = ok + 1
    badtok = badtok + 1
  elseif count(body, '"action":"view","allowed":true') == views
      and count(body, '"action":"update","allowed":false') == updates then
    ok = ok + 1
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local n200, n503, nbad, nok, ngood, nbadtok = 0, 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    n200 = n200 + t:get("non200")
    n503 = n503 + t:get("s503")
    nbad = nbad + t:get("bad")
    nok = nok + t:get("ok")
    ngood = ngood + t:get("good")
    nbadtok = nbadtok + t:get("badtok")
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d ok=%d non200=%d wrong_decision=%d sock_err=%d good=%d badtok=%d batch=%d s503=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    nok, n200, nbad, e.connect + e.read + e.write + e.timeout, ngood, nbadtok, batch, n503))
end
