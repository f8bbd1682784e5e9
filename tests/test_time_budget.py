"""`train --max-minutes` (TrainConfig.max_minutes, budget.py), with a fake clock: the schedule is stretched to
end at min_lr when the time is up, evaluation does not count, and the last evaluation and checkpoint happen."""

import pytest
import torch

from gpt_from_scratch.budget import TimeBudget
from gpt_from_scratch.model import GPTConfig
from gpt_from_scratch.train import ConfigError, TrainConfig, Trainer, get_lr, train


class FakeClock:
    """Seconds that pass only when the test says: each training step takes `step_s` (see timed_steps)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tiny_cfg(**kw) -> TrainConfig:
    return TrainConfig(
        model=GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, dropout=0.0), batch_size=4, max_iters=10**6,
        eval_interval=25, eval_iters=1, warmup_iters=10, learning_rate=1e-2, min_lr=1e-3, device="cpu",
        progress=False, seed=1, max_minutes=1.0,
    ).replace(**kw)


@pytest.fixture
def timed(monkeypatch):
    """A fake clock; training step n (from 1) advances it by clock.step_time(n) seconds, every evaluation
    by 1000 s; the learning rate each step used is recorded."""
    clock = FakeClock()
    clock.step_time = lambda n: 1.0
    lrs = []
    real_step, real_eval = Trainer.step, Trainer.evaluate

    def step(self):
        out = real_step(self)
        lrs.append(self.optimizer.param_groups[0]["lr"])
        clock.now += clock.step_time(len(lrs))
        return out

    def evaluate(self, tokens_per_s):
        clock.now += 1000.0  # a slow evaluation: it must not count against the budget
        return real_eval(self, tokens_per_s)

    monkeypatch.setattr(Trainer, "step", step)
    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    return clock, lrs


def test_the_budget_ends_the_run_and_the_schedule_reaches_min_lr(timed, text, tmp_path):
    clock, lrs = timed
    result = train(tiny_cfg(out_dir=str(tmp_path)), text=text[:5000], clock=clock)
    # 60 s at 1 s a step, although each of the 4 evaluations took 1000 s: evaluation is excluded
    assert result.iter_num == 60 and result.train_s == pytest.approx(60.0)
    assert clock.now == pytest.approx(60.0 + 1000.0 * 4)
    assert max(lrs) == pytest.approx(1e-2, rel=0.02)  # it warmed up to the peak
    assert lrs[-1] == pytest.approx(1e-3, abs=1e-4)  # and decayed to min_lr at the very end of the budget
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # after the warmup: only down
    # the last evaluation happened at the end (not only every eval_interval), and was checkpointed
    assert [h["iter"] for h in result.history] == [0, 25, 50, 60]
    assert result.history[-1]["lr"] == pytest.approx(1e-3)
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert ckpt["iter_num"] == 60 and ckpt["train_seconds"] == pytest.approx(60.0)
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "log.csv").read_text().count("\n") == 5


def test_the_schedule_follows_a_change_of_speed(timed, text):
    clock, lrs = timed
    clock.step_time = lambda n: 1.0 if n <= 20 else 3.0  # after 20 steps the machine gets 3x slower
    result = train(tiny_cfg(), text=text[:5000], clock=clock)
    assert result.iter_num == 20 + 14  # 20 s + 14 steps of 3 s = 62 s >= 60 s
    assert lrs[-1] == pytest.approx(1e-3, abs=5e-4)  # still ends near min_lr
    assert lrs[19] > 0.5e-2  # at step 20 the first estimate (60 steps) still held: far from the end


def test_max_iters_still_caps_a_budget(timed, text):
    clock, lrs = timed
    result = train(tiny_cfg(max_iters=30), text=text[:5000], clock=clock)
    assert result.iter_num == 30 and result.train_s == pytest.approx(30.0)
    assert lrs[-1] == pytest.approx(get_lr(29, tiny_cfg(max_iters=30)))


def test_resume_keeps_the_time_spent(timed, text, tmp_path):
    clock, _ = timed
    train(tiny_cfg(max_minutes=0.5, out_dir=str(tmp_path)), text=text[:5000], clock=clock)
    again = train(tiny_cfg(max_minutes=1.0, out_dir=str(tmp_path), resume=True), text=text[:5000], clock=clock)
    assert again.iter_num == 60 and again.train_s == pytest.approx(60.0)


def test_time_budget_estimates_the_total_from_recent_steps():
    clock = FakeClock()
    budget = TimeBudget(1.0, clock)
    assert budget.total_steps(0) is None and not budget.expired
    for i in range(10):
        budget.time_step(lambda: setattr(clock, "now", clock.now + 2.0))
    assert budget.spent == pytest.approx(20.0) and budget.total_steps(10) == 30
    assert TimeBudget(None, clock).total_steps(10) is None  # no limit: no estimate


def test_a_budget_shorter_than_the_warmup_still_warms_up_and_decays():
    cfg = tiny_cfg(warmup_iters=100)
    lrs = [get_lr(i, cfg, total=20) for i in range(20)]
    # warmup over the first 10 steps (half of 20), the peak at step 10, then down to min_lr
    assert lrs[:11] == sorted(lrs[:11]) and lrs[10] == pytest.approx(1e-2) and lrs[10:] == sorted(lrs[10:])[::-1]
    assert get_lr(20, cfg, total=20) == pytest.approx(1e-3)


@pytest.mark.parametrize("bad,match", [(dict(max_minutes=0.0), "max-minutes"), (dict(budget_clock="sun"), "clock")])
def test_bad_budget_settings_are_config_errors(bad, match, text):
    with pytest.raises(ConfigError, match=match):
        train(tiny_cfg(**bad), text=text[:5000])


def test_cpu_clock_counts_process_time(text):
    result = train(tiny_cfg(max_minutes=0.02, budget_clock="cpu", eval_interval=10**6), text=text[:5000])
    assert result.train_s >= 1.2 and result.iter_num > 5


def test_cpu_speedrun_preset_trains_on_a_time_budget():
    from gpt_from_scratch.train import get_preset

    cfg = get_preset("cpu-speedrun")
    assert cfg.max_minutes == 5.0 and cfg.optimizer == "adamw" and cfg.gpt.activation == "relu2"


def test_cli_refuses_a_bad_budget_with_one_line(capsys, tmp_path):
    from gpt_from_scratch.cli import main

    code = main(["train", "--preset", "cpu-speedrun", "--max-minutes", "0", "--out-dir", str(tmp_path / "o"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: max-minutes must be a number > 0") and err.count("\n") == 1
