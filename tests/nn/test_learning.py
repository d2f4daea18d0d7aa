"""A QRNN learns: the paper's memorisation and Elman XOR tasks, in seconds on the exact engine."""

import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.evaluation import evaluate
from pennylane_qrnn.tasks import ElmanXOR, Memorisation


def _train(task, model, steps, batch_size, lr, stop):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = task.batch(batch_size, generator)
        log_probs, _ = model(batch.tokens, batch.targets)
        loss = model.loss(log_probs, batch.targets, batch.scored)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        if stop(model):
            break
    return model


def test_memorisation_to_nll_below_1e_3():
    task = Memorisation(length=20)
    model = QRNN(3, 5, stages=2, degree=3, order=2)  # the paper's 1162-parameter model

    def nll(m):
        batch = task.batch(2)
        with torch.no_grad():
            return m.loss(m(batch.tokens, batch.targets)[0], batch.targets).item()

    _train(task, model, 300, 2, 0.05, lambda m: nll(m) < 1e-3)
    assert nll(model) < 1e-3


def test_elman_xor_predictable_bits_all_right():
    task = ElmanXOR(length=36)
    model = QRNN(2, 4, stages=1, degree=3, order=2)
    validation = [task.batch(32, torch.Generator().manual_seed(99 + i)) for i in range(2)]

    def accuracy(m):
        return evaluate(m, validation, generator=torch.Generator().manual_seed(0)).accuracy_argmax

    _train(task, model, 500, 8, 0.05, lambda m: accuracy(m) == 1.0)
    assert accuracy(model) == 1.0
