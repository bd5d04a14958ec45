#!/usr/bin/env python3
"""The tables of bench/attacks.sh from its raw lines: summary.py RAW (CHECKS=2: checks per victim request).

Raw lines: "ATTACK ROUND alone|attack key=value..." (victim wrk RESULT fields, SAMPLE fields,
srv_cpu_s/loop_cpu_s, and for attack runs rows=, a_* (the attacker's counts), m0_*/m1_* (/metrics
before/after)); "ATTACK ROUND answer TEXT"; "ATTACK ROUND crash phase=...".
Exit 1 on a victim failure (non-200, wrong decision, socket error, a run without one answer),
a crash, or a bad-token row count that is not one row per answered request.
"""
import os, sys, statistics as st
checks = int(os.environ.get('CHECKS', '2'))
runs, answers, crashed = {}, {}, set()
order = []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 3: continue
    name, rnd, phase = f[0], f[1], f[2]
    if name not in order: order.append(name)
    if phase == 'crash': crashed.add(name); continue
    if phase == 'answer': answers.setdefault(name, ' '.join(f[3:])); continue
    kv = {}
    for x in f[3:]:
        if '=' in x:
            k, v = x.split('=', 1); kv[k] = v
    runs.setdefault((name, phase), []).append(kv)

def num(r, k, d=0.0):
    try: return float(r.get(k, d))
    except ValueError: return d

fail = 0
rows_out = []
print(f"\n{'attack':<12} {'rnd':>3} {'phase':<7} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>8} {'max ms':>8} {'errs':>5} {'RSS max MiB':>11} {'HWM MiB':>8} {'srv CPU s':>9} {'loop CPU s':>10}")
for name in order:
    for phase in ('alone', 'attack'):
        for i, r in enumerate(runs.get((name, phase), []), 1):
            errs = int(num(r, 'non200') + num(r, 'wrong_decision') + num(r, 'sock_err') + (num(r, 'requests') == 0))
            fail += errs
            print(f"{name:<12} {i:>3} {phase:<7} {num(r,'rps'):>7.0f} {num(r,'p50_us')/1000:>7.3f} {num(r,'p99_us')/1000:>8.3f} {num(r,'max_us')/1000:>8.1f} {errs:>5} "
                  f"{num(r,'rss_max_kib')/1024:>11.1f} {num(r,'hwm_kib')/1024:>8.1f} {num(r,'srv_cpu_s'):>9.2f} {num(r,'loop_cpu_s'):>10.2f}")

print("\nPer attack (victim p99: median over rounds; RSS: max over the attack runs)")
hdr = f"| attack | victim req/s alone / attack | victim p99 alone | under attack | ratio (<= 2x) | victim max under attack | victim errors | RSS max sampled | VmHWM (< 128 MiB) | server CPU s (event loop) alone / attack | server answered the attacker | attack counts | metrics (delta over the attack runs) | decision rows from the attack | result |"
print(hdr)
print("|" + "---|" * hdr.count(" | ") + "---|")
for name in order:
    alone, att = runs.get((name, 'alone'), []), runs.get((name, 'attack'), [])
    if not alone or not att:
        print(f"| {name} | - | - | - | - | - | - | - | - | - | - | - | - | - | {'CRASH' if name in crashed else 'NO DATA'} |")
        fail += 1
        continue
    p_alone = st.median(num(r, 'p99_us') for r in alone) / 1000
    p_att = st.median(num(r, 'p99_us') if num(r, 'requests') > 0 else float('inf') for r in att) / 1000
    ratio = p_att / p_alone if p_alone else float('inf')
    mx = max(num(r, 'max_us') if num(r, 'requests') > 0 else float('inf') for r in att) / 1000
    errs = sum(int(num(r, 'non200') + num(r, 'wrong_decision') + num(r, 'sock_err')) for r in att + alone)
    starved = sum(1 for r in att if num(r, 'requests') == 0)  # no answer at all in the whole run
    errs += starved
    rss = max(num(r, 'rss_max_kib') for r in att) / 1024
    # the process's peak so far (samples can miss it), also read when the attacker has stopped
    hwm = max(max(num(r, 'hwm_kib'), num(r, 'hwm_end_kib')) for r in att) / 1024
    cpu = lambda rs, k: st.median(num(r, k) for r in rs)
    cpu_text = (f"{cpu(alone,'srv_cpu_s'):.1f} ({cpu(alone,'loop_cpu_s'):.1f}) / "
                f"{cpu(att,'srv_cpu_s'):.1f} ({cpu(att,'loop_cpu_s'):.1f})")
    killed = any(num(r, 'killed') for r in att)
    # what the attacker saw, summed over rounds
    tot = {}
    for r in att:
        for k, v in r.items():
            if k.startswith('a_') and k != 'a_name':
                try: tot[k[2:]] = tot.get(k[2:], 0) + float(v)
                except ValueError: pass
    statuses = ', '.join(f"{k[1:]} x{int(v)}" for k, v in sorted(tot.items()) if k[0] == 's' and k[1:].isdigit())
    counts = ', '.join(f"{k}={v:g}" for k, v in sorted(tot.items())
                       if not (k[0] == 's' and k[1:].isdigit()) and not k.startswith('answer_s') and k not in ('ran_s', 'body_bytes', 'request_bytes'))
    if 'answer_s_max' in tot:
        counts += f", answer time {min(num(r,'a_answer_s_min',1e9) for r in att):.1f}-{max(num(r,'a_answer_s_max') for r in att):.1f} s"
    # metric deltas
    deltas = {}
    for r in att:
        for k, v in r.items():
            if k.startswith('m1_'):
                d = num(r, k) - num(r, 'm0_' + k[3:])
                if d: deltas[k[3:]] = deltas.get(k[3:], 0) + d
    mtext = ', '.join(f"{k}+{v:g}" for k, v in sorted(deltas.items()) if k != 'log_rows') or 'none'
    victim_rows = sum(num(r, 'good') * checks for r in att)
    total_rows = sum(num(r, 'rows') for r in att)
    attack_rows = total_rows - victim_rows
    rows_note = f"{attack_rows:g} (total {total_rows:g} - victim {victim_rows:g}; victim in flight up to {4*checks*len(att)})"
    if name.startswith('bad-'):
        ok200 = tot.get('s200', 0)
        slack = 4 * checks * len(att) + 4 * len(att)
        bounded = abs(attack_rows - ok200) <= slack
        rows_note += f"; attacker's 200s {ok200:g}: one row each {'OK' if bounded else 'MISMATCH'}"
        if not bounded: fail += 1
    # a run with timeouts has no p99 of its own (wrk leaves timed-out requests out of the histogram)
    ok_ratio, ok_rss = ratio <= 2.0 and errs == 0, max(rss, hwm) < 128 and not killed
    res = 'MET' if ok_ratio and ok_rss and errs == 0 and name not in crashed else 'MISSED'
    if name in crashed: res = 'CRASH'; fail += 1
    ans = answers.get(name, '')
    rps = f"{st.median(num(r,'rps') for r in alone):.0f} / {st.median(num(r,'rps') for r in att):.0f}"
    print(f"| {name} | {rps} | {p_alone:.3f} ms | {p_att:.3f} ms | {ratio:.2f}x {'MET' if ok_ratio else 'MISSED'} | {mx:.1f} ms | {errs}{f' ({starved} of {len(att)} runs: not one answer)' if starved else ''} | {rss:.1f} MiB{' (KILLED at the safety bound)' if killed else ''} | {hwm:.1f} MiB {'MET' if ok_rss else 'MISSED'} | {cpu_text} | {statuses or 'no answer'}{' ' + ans if ans else ''} | {counts} | {mtext} | {rows_note} | {res} |")
print("\nALL VICTIM REQUESTS OK, no crash" if fail == 0 else f"\nFAILURES: {fail} (victim errors, crashes or row mismatches)")
sys.exit(1 if fail else 0)
