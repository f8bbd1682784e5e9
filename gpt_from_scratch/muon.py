"""Muon: momentum, then orthogonalise each weight matrix's update.

AdamW scales every number of the gradient by its own running size. Muon looks
at a weight matrix as a whole: it keeps a momentum of the gradient, and before
applying it, replaces the update matrix G = U S V^T (its singular value
decomposition) by U V^T, the nearest orthogonal matrix. Every direction the
update moves in then moves by the same amount, instead of a few large
directions drowning out the rest. Computing U V^T exactly (an SVD) is slow;
five Newton-Schulz iterations, a few matrix products, give it approximately
(`newton_schulz`).

Muon is for the 2-D weights inside the transformer blocks only. The token and
position embeddings, the output layer, and the 1-D gains and biases are not
"matrices acting on a hidden vector" in the same sense, and they train with
AdamW, as in Keller Jordan's modded-nanogpt speedrun and Karpathy's nanochat,
where this recipe comes from. `MuonWithAdamW` holds both in one optimizer, so
the training loop, the learning-rate schedule and checkpoints treat it like
any other.

The learning-rate rule. An orthogonalised m x n update has min(m, n)
singular values of 1, so the RMS of its entries is 1 / sqrt(max(m, n)): a
matrix with more outputs than inputs (c_fc: 4C x C, or the fused qkv: 3C x C)
would get smaller steps per entry than a square one. Multiplying by
sqrt(max(1, m / n)) makes every matrix's update RMS 1 / sqrt(n), n its fan-in,
so that the change of each output, summed over n inputs, is the same size for
every matrix. One Muon learning rate then fits all of them, and it is
independent of AdamW's: `TrainConfig.muon_lr`, scaled by the same warmup and
decay schedule as the AdamW learning rate.
"""

from __future__ import annotations

import torch
import torch.nn as nn

# The quintic's coefficients from modded-nanogpt: chosen to push small singular values up as fast as
# possible. The price is that they do not converge to exactly 1 but oscillate in a band around it
# (about 0.7 to 1.2 after five steps), which training does not mind.
NS_COEFFS = (3.4445, -4.7750, 2.0315)
NS_BAND = (0.6, 1.25)  # where the singular values of newton_schulz's result lie, for a well-scaled input


@torch.no_grad()
def newton_schulz(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximately U V^T for g = U S V^T (g is 2-D): an orthogonal matrix in g's directions.

    Each step maps every singular value s to a*s + b*s^3 + c*s^5 while keeping
    the singular vectors. Dividing by the Frobenius norm first puts all singular
    values in (0, 1], where the polynomial pulls them towards 1.
    """
    a, b, c = NS_COEFFS
    x = g.float()
    tall = x.size(0) > x.size(1)
    if tall:  # work with the wide form: X X^T is then the smaller Gram matrix
        x = x.T
    x = x / (x.norm() + eps)  # the largest singular value is at most the Frobenius norm: now <= 1
    for _ in range(steps):
        gram = x @ x.T  # (m, m), m <= n
        x = a * x + (b * gram + c * gram @ gram) @ x  # a*X + b*(XX^T)X + c*(XX^T)^2 X
    return (x.T if tall else x).to(g.dtype)


def muon_scale(shape: torch.Size) -> float:
    """sqrt(max(1, fan_out / fan_in)): makes an orthogonalised update's RMS 1 / sqrt(fan_in) (module docstring)."""
    fan_out, fan_in = shape[0], shape[1]
    return max(1.0, fan_out / fan_in) ** 0.5


def muon_param_groups(model: nn.Module, lr: float, muon_lr: float, weight_decay: float) -> list[dict]:
    """Muon for the 2-D weights of the transformer blocks; AdamW for everything else.

    AdamW decays its 2-D tensors (embeddings, an untied head) but not gains and
    biases, as configure_optimizer does. Each group's `lr_scale` is its peak
    learning rate divided by `lr`: the training loop multiplies the schedule's
    learning rate by it, so both optimizers warm up and decay together.
    """
    muon, adam_decay, adam_no_decay, seen = [], [], [], set()
    for name, p in model.named_parameters():  # a tied head is listed once, as the token embedding
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if p.dim() == 2 and ".h." in f".{name}":  # transformer.h.N...: a weight matrix inside a block
            muon.append(p)
        elif p.dim() >= 2:
            adam_decay.append(p)
        else:
            adam_no_decay.append(p)
    return [
        dict(params=muon, use_muon=True, lr_scale=muon_lr / lr, weight_decay=0.0),
        dict(params=adam_decay, use_muon=False, lr_scale=1.0, weight_decay=weight_decay),
        dict(params=adam_no_decay, use_muon=False, lr_scale=1.0, weight_decay=0.0),
    ]


class MuonWithAdamW(torch.optim.Optimizer):
    """One optimizer, two rules: Muon for groups with use_muon=True, AdamW for the rest.

    A group's `lr` is the learning rate of this step (the training loop sets it
    from the schedule times `lr_scale`). Muon's momentum is Nesterov's, as in
    modded-nanogpt: the update looks one momentum step ahead.
    """

    def __init__(self, param_groups: list[dict], lr: float, betas=(0.9, 0.95), eps: float = 1e-8,
                 momentum: float = 0.95, ns_steps: int = 5):
        defaults = dict(lr=lr, betas=betas, eps=eps, momentum=momentum, ns_steps=ns_steps,
                        weight_decay=0.0, use_muon=False, lr_scale=1.0)
        super().__init__(param_groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["weight_decay"]:  # decoupled, as in AdamW: shrink towards zero, then step
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                if group["use_muon"]:
                    self._muon_update(p, group)
                else:
                    self._adamw_update(p, group)
        return loss

    def _muon_update(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buf, mu = state["momentum_buffer"], group["momentum"]
        buf.lerp_(p.grad, 1 - mu)  # buf = mu * buf + (1 - mu) * grad: a running mean of the gradient
        update = p.grad.lerp(buf, mu)  # Nesterov: (1 - mu) * grad + mu * buf, one step ahead
        update = newton_schulz(update, group["ns_steps"])
        p.add_(update, alpha=-group["lr"] * muon_scale(p.shape))

    def _adamw_update(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        if "step" not in state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        t = state["step"].item()
        state["exp_avg"].lerp_(p.grad, 1 - beta1)  # first moment: the mean gradient
        state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)  # second: its mean square
        bias1, bias2 = 1 - beta1**t, 1 - beta2**t  # both start at zero: correct the early steps
        denom = (state["exp_avg_sq"] / bias2).sqrt_().add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / bias1)


def make_muon(model: nn.Module, lr: float, muon_lr: float, weight_decay: float, betas=(0.9, 0.95),
              momentum: float = 0.95) -> MuonWithAdamW:
    """The Muon + AdamW optimizer for a GPT: the groups of muon_param_groups, in one object."""
    groups = muon_param_groups(model, lr, muon_lr, weight_decay)
    opt = MuonWithAdamW(groups, lr=lr, betas=betas, momentum=momentum)
    for g in opt.param_groups:  # the first step's learning rates, before the schedule sets them
        g["lr"] = lr * g["lr_scale"]
    return opt
