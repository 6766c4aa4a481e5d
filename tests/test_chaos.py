"""A short fault-injection run (the long one is `inventory chaos`): concurrent
clients against two API processes on a private database while backends are
terminated, the database restarts and an API process is SIGKILLed; then every
check must pass. The checker itself must catch a lost write and a write
recorded under another actor than the workload's API key."""
from __future__ import annotations

from sqlalchemy import text

from inventory.chaos.checker import check
from inventory.chaos.runner import ChaosConfig, ChaosStack, run_chaos, summary


async def test_short_chaos_run_loses_nothing_and_the_checker_catches_a_loss():
    config = ChaosConfig(duration_s=6, clients=8, api_processes=2, backend_kill_s=0.2,
                         db_restart_s=2.5, api_kill_s=3, grace_s=20, seed=7, progress_s=2)
    lines: list[str] = []
    with ChaosStack(config) as stack:
        result = await run_chaos(stack, config, out=lines.append)
        report = summary(result)
        print(report)
        assert result.violations == [], report
        kinds = " ".join(result.faults.injected)
        for fault in ("backend terminated", "database restarted", "API process SIGKILLed",
                      "API process restarted"):
            assert fault in kinds, report
        acknowledged = [c for c in result.state.calls if c.outcome == "ok"]
        assert len(acknowledged) >= 5, report  # few on a busy machine; each is checked
        assert sum(result.state.indeterminate.values()) > 0, report  # faults were felt
        assert any("ops ok=" in line for line in lines)
        assert stack.actor.startswith("key:") and f"by {stack.actor}" in report

        # Lose one acknowledged write's ledger row and one idempotency record, and
        # credit a third to someone else: the checker must report all three.
        lost, unrecorded, misattributed = acknowledged[:3]
        with stack.engine.begin() as conn:
            conn.execute(text("UPDATE movements SET idempotency_key = NULL "
                              "WHERE idempotency_key = :k"), {"k": lost.key})
            conn.execute(text("DELETE FROM idempotency_keys WHERE key = :k"),
                         {"k": unrecorded.key})
            conn.execute(text("UPDATE movements SET actor = 'key:someone-else' "
                              "WHERE idempotency_key = :k"), {"k": misattributed.key})
        again = check(stack.engine, result.state.calls, overdue_grace_s=2, actor=stack.actor)
        found = "\n".join(again.violations)
        assert f"acknowledged {lost.op} {lost.key}: expected {lost.lines} ledger rows" in found, found
        assert f"{unrecorded.key}: idempotency record missing" in found, found
        assert (f"acknowledged {misattributed.op} {misattributed.key}: {misattributed.lines} "
                f"ledger rows not by {stack.actor} (e.g. key:someone-else)") in found, found
