"""Training under a time budget: the schedule in steps, the budget checked before every step."""

from __future__ import annotations

import torch

from dnerv_codec.model import build_model


def test_time_budget_ends_the_schedule_inside_a_long_epoch():
    """An epoch longer than the budget (large videos): the schedule is fitted in steps and the
    run stops inside the first epoch, with the learning rate decayed."""
    from dnerv_codec.encoder import EncodeOptions
    from dnerv_codec.encoder.fitting import train
    from dnerv_codec.progress import Progress
    from dnerv_codec.train import Trainer, lr_at

    torch.manual_seed(0)
    model = build_model("tiny")
    frames = [torch.randint(0, 256, (16001, 32, 48, 3), dtype=torch.uint8)]
    keys = [frames[0][::8].permute(0, 3, 1, 2)]
    trainer = Trainer(model, frames, keys, batch_size=1, epochs=3, lr=1e-3)
    budget = 5.0
    opts = EncodeOptions(preset="tiny", time_budget=budget)
    opts.validate()
    seconds = train(trainer, opts, None, Progress(quiet=True))
    assert trainer.epoch == 1 and trainer.step < trainer.steps_per_epoch
    # the schedule was fitted in steps and ends with the budget (within a step or two: the
    # schedule ends on the last whole step that fits, the budget is checked before each step)
    assert trainer.max_steps is not None and trainer.step >= trainer.max_steps - 1
    assert 0.85 * budget <= seconds < budget + 1.5
    assert lr_at(trainer.step, trainer.total_steps, 1e-3) < 0.1 * 1e-3
