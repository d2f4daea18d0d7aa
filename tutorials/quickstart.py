"""Quickstart: a QRNN as a torch.nn module, trained on Elman's XOR, then run as circuits.

    python tutorials/quickstart.py

1. Build the paper's Elman-XOR model (2 i/o qubits, 4 workspace qubits, 1 work stage,
   degree-3 neurons of order 2: 10 qubits with the neurons' ancillas).
2. Train it with the exact engine (teacher forcing: the i/o qubits are postselected on the
   target after every step, the workspace state carries on).
3. Look at what a QPU would pay for the postselections.
4. Run the same weights as PennyLane circuits on lightning.qubit and compare.
"""

import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.evaluation import evaluate
from pennylane_qrnn.tasks import get_task

torch.manual_seed(0)
task = get_task("elman-xor", length=36)
model = QRNN(io_bits=2, workspace=4, stages=1, degree=3, order=2)
print(model, "with", sum(p.numel() for p in model.parameters()), "parameters")

optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
data = torch.Generator().manual_seed(0)
for step in range(1, 301):
    batch = task.batch(8, data)
    log_probs, state = model(batch.tokens, batch.targets)  # (36, 8, 4), (8, 16)
    loss = model.loss(log_probs, batch.targets, mask=batch.scored)  # only the XOR bits count
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step:3d}: NLL of the XOR bits {loss.item():.4f}")

validation = [task.batch(64, torch.Generator().manual_seed(1))]
result = evaluate(model, validation, generator=torch.Generator().manual_seed(2))
print(
    f"XOR bits right: {100 * result.accuracy_argmax:.1f} % (argmax), "
    f"{100 * result.accuracy_sampled:.1f} % (sampled)"
)
print(
    f"log success probability of one sequence on a QPU: median {result.log_success_median:.1f} "
    f"(i/o postselection {result.log_io_success_median:.1f}, neurons "
    f"{result.log_neuron_success_median:.1f})"
)

# The same weights as circuits of QuantumNeuron/QRNNCell templates on a PennyLane device.
circuits = QRNN(2, 4, 1, 3, 2, backend="lightning.qubit")
circuits.load_state_dict(model.state_dict())
short = task.batch(1, torch.Generator().manual_seed(3))
tokens, targets = short.tokens[:3], short.targets[:3]
exact, _ = model(tokens, targets)
on_device, _ = circuits(tokens, targets)
print(
    "engine vs lightning.qubit, largest difference of the step probabilities:",
    f"{(exact.exp() - on_device.exp()).abs().max().item():.2e}",
)
