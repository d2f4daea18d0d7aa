"""The paper's synthetic tasks: memorisation, Elman's XOR and letters, and DNA long memory.

Encodings follow the reference implementation (big-endian words, lane 0 the most significant
bit): step ``t`` writes ``tokens[t]`` and is postselected on / scored against ``targets[t]``.
"""

from __future__ import annotations

import warnings

import torch

from ..validation import check_choice, check_int
from .base import Batch, SequenceTask, TaskDefaults

__all__ = ["Memorisation", "ElmanXOR", "ElmanLetters", "DNA", "VARIANTS"]

#: the variants of the memorisation and DNA tasks: the paper's text, or the reference
#: implementation's (RVQE's) code
VARIANTS = ("paper", "rvqe")
#: the variants' former names, and the name each stands for now
RENAMED_VARIANTS = {"reference": "rvqe"}


def check_variant(variant) -> str:
    """``variant`` checked against :data:`VARIANTS`; the former ``"reference"`` becomes
    ``"rvqe"``, with a :class:`FutureWarning`."""
    if isinstance(variant, str) and variant in RENAMED_VARIANTS:
        new = RENAMED_VARIANTS[variant]
        warnings.warn(
            f"variant={variant!r} is deprecated: it names the reference implementation's (RVQE's) "
            f"variant, now {new!r}: pass that name",
            FutureWarning,
            stacklevel=3,
        )
        return new
    return check_choice("variant", variant, VARIANTS)


def _next_token_batch(sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``s[:-1]`` and targets ``s[1:]`` of ``(L + 1, N)`` sequences."""
    return sequences[:-1], sequences[1:]


class Memorisation(SequenceTask):
    """Memorise fixed sequences (the paper's first experiment, 3-bit words).

    ``variant="paper"``: ``4444...`` and ``1231...``; ``variant="rvqe"``: the reference
    implementation's (RVQE's) ``4444...`` and ``0123...``. Each sequence has ``length + 1``
    tokens; every step predicts the next token and is scored. A batch cycles through the
    sequences.

    Args:
        length (int): steps per sequence, at least 1
        variant (str): ``"paper"`` or ``"rvqe"`` (:data:`VARIANTS`)

    **Example**

    >>> from pennylane_qrnn.tasks import Memorisation
    >>> batch = Memorisation(length=5).batch(2)
    >>> batch.tokens.T.tolist()  # (L, N) time-major; one sequence a row here
    [[4, 4, 4, 4, 4], [1, 2, 3, 1, 2]]
    >>> batch.targets.T.tolist()
    [[4, 4, 4, 4, 4], [2, 3, 1, 2, 3]]
    """

    name = "memorise"
    io_bits = 3
    defaults = TaskDefaults(
        workspace=5, stages=2, degree=3, order=2, steps=300, batch_size=2, lr=0.05, target_loss=1e-3
    )
    paper_result = "converges (H5 S2 d3, 1162 params); Adam best, lr ~0.05"

    def __init__(self, length: int = 20, variant: str = "paper"):
        self.length = check_int("length", length, minimum=1)
        self.variant = check_variant(variant)
        cycle = [1, 2, 3] if self.variant == "paper" else [0, 1, 2, 3]
        n = self.length + 1
        self.sequences = torch.tensor(
            [[4] * n, [cycle[i % len(cycle)] for i in range(n)]], dtype=torch.long
        ).T

    def batch(self, size, generator=None, split="train"):
        check_int("size", size, minimum=1)
        columns = torch.arange(size) % self.sequences.shape[1]
        tokens, targets = _next_token_batch(self.sequences[:, columns])
        scored = torch.ones_like(tokens, dtype=torch.bool)
        return Batch(tokens, targets, scored, forced=torch.zeros_like(scored))


class ElmanXOR(SequenceTask):
    """Elman's XOR: triples ``a, b, a XOR b`` of random bits; only the XOR bit is predictable.

    2-bit words: inputs ``0a, 0b, 0c``; targets ``10`` (a marker for "unpredictable") while the
    next bit is random, and ``0c`` where it is the XOR. Scored: the steps that predict ``c``.
    Evaluations postselect the unscored steps.

    Args:
        length (int): steps per sequence, at least 3

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.tasks import ElmanXOR
    >>> batch = ElmanXOR(length=6).batch(1, generator=torch.Generator().manual_seed(0))
    >>> batch.tokens[:, 0].tolist(), batch.targets[:, 0].tolist()  # 0 XOR 1 = 1, 1 XOR 1 = 0
    ([0, 1, 1, 1, 0, 1], [2, 1, 2, 2, 1, 2])
    >>> batch.scored[:, 0].tolist()
    [False, True, False, False, True, False]
    """

    name = "elman-xor"
    io_bits = 2
    defaults = TaskDefaults(
        workspace=4, stages=1, degree=3, order=2, steps=300, batch_size=8, lr=0.05, target_loss=1e-3
    )
    paper_result = "val loss < 1e-3 (H4 S1); bias init at pi/4 matters most"

    def __init__(self, length: int = 36):
        self.length = check_int("length", length, minimum=3)

    def batch(self, size, generator=None, split="train"):
        check_int("size", size, minimum=1)
        triples = -(-(self.length + 1) // 3)
        ab = torch.randint(0, 2, (triples, 2, size), generator=generator)
        c = ab[:, 0] ^ ab[:, 1]
        bits = torch.stack([ab[:, 0], ab[:, 1], c], dim=1).reshape(3 * triples, size)
        sequence = bits[: self.length + 1]
        position = torch.arange(self.length + 1).unsqueeze(1).expand_as(sequence)
        predictable = position % 3 == 2
        target_words = torch.where(predictable, sequence, torch.full_like(sequence, 2))
        tokens, targets = sequence[:-1], target_words[1:]
        scored = predictable[1:].clone()
        return Batch(tokens, targets, scored, forced=~scored)


class ElmanLetters(SequenceTask):
    """Elman's letters: ``b -> ba``, ``d -> dii``, ``g -> guuu``, consonants random.

    3-bit words ``b=100, d=101, g=110, a=000, i=001, u=010``; a consonant's target is ``111``
    (unpredictable); vowels are predictable. Every step is scored (as in the reference).

    Args:
        length (int): steps per sequence, at least 2

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.tasks import ElmanLetters
    >>> batch = ElmanLetters(length=8).batch(1, generator=torch.Generator().manual_seed(0))
    >>> batch.tokens[:, 0].tolist()  # g u u u b a g u
    [6, 2, 2, 2, 4, 0, 6, 2]
    >>> batch.targets[:, 0].tolist()  # 7 where a random consonant comes next
    [2, 2, 2, 7, 0, 7, 2, 2]
    """

    name = "elman-letters"
    io_bits = 3
    defaults = TaskDefaults(
        workspace=6, stages=2, degree=2, order=2, steps=900, batch_size=4, lr=0.05, target_loss=1e-2
    )
    paper_result = "~550-900 steps (best H6 S2 d2 ord2)"
    CODES = {"b": 4, "d": 5, "g": 6, "a": 0, "i": 1, "u": 2}
    WORDS = {"b": "ba", "d": "dii", "g": "guuu"}
    UNPREDICTABLE = 7

    def __init__(self, length: int = 36):
        self.length = check_int("length", length, minimum=2)

    def batch(self, size, generator=None, split="train"):
        check_int("size", size, minimum=1)
        consonants = torch.randint(0, 3, (self.length + 1, size), generator=generator)
        columns = []
        for item in range(size):
            letters = "".join(self.WORDS["bdg"[int(c)]] for c in consonants[:, item])
            columns.append([self.CODES[ch] for ch in letters[: self.length + 1]])
        sequence = torch.tensor(columns, dtype=torch.long).T
        is_consonant = sequence >= 4
        target_words = torch.where(
            is_consonant, torch.full_like(sequence, self.UNPREDICTABLE), sequence
        )
        tokens, targets = sequence[:-1], target_words[1:]
        scored = torch.ones_like(tokens, dtype=torch.bool)
        return Batch(tokens, targets, scored, forced=targets == self.UNPREDICTABLE)


class DNA(SequenceTask):
    """Long memory: remember the base after the marker ``U`` until the end of the sequence.

    Bases ``G A T C`` are tokens 0-3 (3-bit words); the marker sits at a random position in
    ``[1, L/2)``. Only the last step is scored: it must output the base.

    * ``variant="rvqe"`` (the reference implementation, RVQE, to compare with its numbers): the
      marker is written as ``base + 4``, so it carries the base; targets are 0 before it, the
      marker at it and the base at every later step. Teacher forcing thus writes the answer into
      the state at every step after the marker.
    * ``variant="paper"`` (the paper's text, the honest long-memory test): ``U`` is its own token
      (4), the base to remember is the next input, every other input is a random base, and every
      target before the last is 0, so nothing reveals the base until the scored step.

    Args:
        length (int): steps per sequence, 4 to 1000
        variant (str): ``"paper"`` or ``"rvqe"`` (:data:`VARIANTS`)

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.tasks import DNA
    >>> batch = DNA(length=6).batch(2, generator=torch.Generator().manual_seed(0))
    >>> batch.tokens.T.tolist()  # the marker 4, then the base to remember
    [[0, 4, 1, 3, 1, 1], [3, 4, 0, 3, 3, 2]]
    >>> batch.labels.tolist(), batch.scored[:, 0].tolist()
    ([1, 0], [False, False, False, False, False, True])
    """

    name = "dna"
    io_bits = 3
    defaults = TaskDefaults(
        workspace=5,
        stages=1,
        degree=3,
        order=2,
        steps=400,
        batch_size=128,
        lr=0.01,
        target_loss=1e-3,
    )
    paper_result = "~100 steps to val loss 1e-3, flat in length (H5 S1 d3, 837 params)"
    MARKER = 4

    def __init__(self, length: int = 100, variant: str = "paper"):
        self.length = check_int("length", length, minimum=4, maximum=1000)
        self.variant = check_variant(variant)

    def batch(self, size, generator=None, split="train"):
        check_int("size", size, minimum=1)
        n = self.length + 1
        bases = torch.randint(0, 4, (n, size), generator=generator)
        high = max(2, (self.length + 1) // 2)
        position = torch.randint(1, high, (size,), generator=generator)
        steps = torch.arange(n).unsqueeze(1)
        at, after = steps == position, steps > position
        answer = bases[position, torch.arange(size)]
        if self.variant == "rvqe":
            sequence = torch.where(at, answer + self.MARKER, bases)
            target_words = torch.where(at, answer + self.MARKER, torch.where(after, answer, 0))
        else:
            # marker at k, the base to remember at k + 1
            sequence = torch.where(at, torch.full_like(bases, self.MARKER), bases)
            sequence = torch.where(steps == position + 1, answer, sequence)
            target_words = torch.zeros_like(sequence)
            target_words[-1] = answer
        tokens, targets = sequence[:-1], target_words[1:]
        scored = torch.zeros_like(tokens, dtype=torch.bool)
        scored[-1] = True
        return Batch(tokens, targets, scored, forced=~scored, labels=answer)
