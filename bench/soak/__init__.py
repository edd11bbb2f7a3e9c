"""Soak and fault-injection suite: the whole system, for real, under a seeded schedule of faults.

`python -m bench.soak --minutes 3 --seed 1 --json out.json` builds veth pairs in network namespaces,
starts collectors (SQLite and PostgreSQL) and `veille agent run` processes, replays generated
traffic at a fixed rate, injects faults on a schedule and prints one report (table and JSON).
Modules: `traffic` (scapy-made rounds with their truth), `system` (namespaces, relays, processes),
`faults`, `ledger` (what each side holds), `report` (accounting and the pass verdict), `run`.
"""
