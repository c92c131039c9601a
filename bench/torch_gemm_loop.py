"""A fixed torch workload (forward + backward of a 128 x 1767 x 128 matmul, 300 times): the shape of
an scVI minibatch step. Imported by bench/bench_torch_in_r.R in each process it compares."""
import time


def run(repeats: int = 300) -> float:
    import torch

    torch.manual_seed(0)
    x = torch.randn(128, 1767)
    w = torch.randn(1767, 128, requires_grad=True)
    start = time.perf_counter()
    for _ in range(repeats):
        (x @ w).relu().sum().backward()
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"{run():.4f}")
