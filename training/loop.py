"""The optimisation loop shared by ``jetseg train`` and ``jetseg distill``.

AdamW with a one-cycle learning rate, shuffled batches drawn from a seeded generator, a progress bar with
ETA, a held-out score every ``eval_interval`` steps, and the best-scoring weights restored at the end.
What a step computes (augmentation, loss) is the caller's ``step_loss``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

from jetseg.optional import require

torch = require("torch", "training")
log = logging.getLogger("jetseg.train")


@dataclass
class FitResult:
    """What :func:`fit` did: the step whose weights were kept, its score, and the evaluation history."""

    best_step: int = 0
    best_score: float = float("-inf")  # any first score is kept (registration scores are minus an error)
    history: List[Dict[str, Any]] = field(default_factory=list)


def use_training_threads(threads: int) -> int:
    """Set PyTorch's intra-op threads for the training loop and return the number set: ``threads`` when > 0,
    else jetseg's default (:func:`~jetseg.jetson.runners.default_threads`: usable cores - 1, at least 1).

    These are the training loop's threads, a process-wide PyTorch setting; a runner's inference threads (the
    ``threads`` option of the teacher's or the held-out check's runner) are a separate number.
    """
    from jetseg.jetson.runners import default_threads
    from jetseg.training.data import TrainError

    if threads < 0:
        raise TrainError("training threads %d are invalid; expected 0 (jetseg's default) or a positive number"
                         % threads)
    used = threads if threads > 0 else default_threads()
    torch.set_num_threads(used)
    return used


def batch_indices(n: int, batch: int, seed: int) -> Iterator[np.ndarray]:
    """Endless batches of indices into ``n`` items: a fresh seeded permutation per pass."""
    order = np.random.default_rng(seed)
    perm = order.permutation(n)
    cursor = 0
    while True:
        if cursor + batch > n:
            perm, cursor = order.permutation(n), 0
        yield perm[cursor:cursor + batch]
        cursor += batch


def optimizer(model: Any, lr: float, steps: int) -> Any:
    """AdamW and its schedule: one-cycle (10% warm-up) from 20 steps on, constant for smoke runs."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    if steps >= 20:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


def fit(model: Any, step_loss: Callable[[np.ndarray], Any], evaluate: Callable[[], float], n: int,
        steps: int, batch: int, lr: float, seed: int, eval_interval: int, desc: str,
        score_name: str = "val_dice") -> FitResult:
    """Train ``model`` for ``steps`` steps and keep the weights of the best held-out score.

    Args:
        step_loss: the loss (a scalar tensor) of one batch, given its indices into the ``n`` training items;
            called with the model in training mode.
        evaluate: the held-out score (higher is better), called with the model in eval mode.
    """
    from jetseg.training.progress import bar

    opt, sched = optimizer(model, lr, steps)
    batches = batch_indices(n, batch, seed)
    result = FitResult()
    best_state: Optional[Dict[str, Any]] = None
    with bar(total=steps, desc=desc, unit="step") as progress:
        for step in range(1, steps + 1):
            model.train()
            loss = step_loss(next(batches))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            progress.update(1)
            if step % eval_interval == 0 or step == steps:
                model.eval()
                score = float(evaluate())
                result.history.append({"step": step, "loss": round(float(loss.item()), 4),
                                       score_name: round(score, 4)})
                progress.set_postfix({"loss": "%.3f" % loss.item(), score_name: "%.3f" % score})
                log.info("step %d loss %.4f held-out %s %.4f", step, loss.item(), score_name, score)
                if score > result.best_score:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    result.best_score, result.best_step = score, step
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


def predict(model: Any, x: np.ndarray, batch: int = 16) -> np.ndarray:
    """Raw outputs ``(N, K, H, W) float32`` of a PyTorch model on preprocessed input (eval mode, no grad)."""
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[i:i + batch].astype(np.float32))).numpy())
    return np.concatenate(out)


def state_bytes(model: Any) -> bytes:
    """The model's ``state_dict`` as ``torch.save`` bytes (tensors only: loadable with ``weights_only``)."""
    import io

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()
