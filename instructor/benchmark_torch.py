"""The same FO-MAML meta-iteration in plain PyTorch eager code, for a speed comparison.

Not part of the assignment and not needed by anything else: it needs PyTorch
(`pip install torch`, CPU build), which requirements.txt does not pin. It times
exactly what `instructor/benchmark.py` times for the TensorFlow reference — conv-4
with batch statistics, 5-way 5-shot, 15 queries, 5 inner steps at lr 0.4, first
order, Adam on the mean query loss — on the same Omniglot tasks:

    python instructor/benchmark_torch.py --meta-batch-size 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import load_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meta-batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="0 = PyTorch's default")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    params = []
    in_channels = 1
    for _ in range(4):
        weight = torch.empty(64, in_channels, 3, 3)
        torch.nn.init.xavier_uniform_(weight)
        params += [weight, torch.zeros(64)]
        in_channels = 64
    head = torch.empty(5, 64)
    torch.nn.init.xavier_uniform_(head)
    params += [head, torch.zeros(5)]
    params = [p.requires_grad_() for p in params]
    optimizer = torch.optim.Adam(params, lr=1e-3)

    def forward(x, p):
        for i in range(4):
            x = F.conv2d(x, p[2 * i], stride=2, padding=1)
            x = F.relu(F.batch_norm(x, None, None, training=True) + p[2 * i + 1][None, :, None, None])
        return F.linear(x.mean(dim=(2, 3)), p[8], p[9])

    def meta_iteration(batch):
        optimizer.zero_grad()
        losses = []
        for xs, ys, xq, yq in batch:
            adapted = params
            for _ in range(5):
                loss = F.cross_entropy(forward(xs, adapted), ys)
                grads = torch.autograd.grad(loss, adapted)  # first order: no create_graph
                adapted = [p - 0.4 * g for p, g in zip(adapted, grads)]
            losses.append(F.cross_entropy(forward(xq, adapted), yq))
        outer = torch.stack(losses).mean()
        outer.backward()
        optimizer.step()
        return outer.item()

    def to_torch(task):
        xs, ys, xq, yq = task
        return (torch.from_numpy(xs).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(ys).long(),
                torch.from_numpy(xq).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(yq).long())

    data = load_data.load_omniglot(progress=False)
    sampler = load_data.TaskSampler(data, "train", 5, 5, 15, seed=100)
    meta_iteration([to_torch(t) for t in sampler.batch(0, args.meta_batch_size)])
    times = []
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        meta_iteration([to_torch(t) for t in sampler.batch(step, args.meta_batch_size)])
        times.append(time.perf_counter() - start)
    print(f"PyTorch {torch.__version__} eager, {torch.get_num_threads()} threads, meta-batch "
          f"{args.meta_batch_size}: {statistics.median(times):.3f} s per meta-iteration "
          f"(median of {args.steps})")


if __name__ == "__main__":
    main()
