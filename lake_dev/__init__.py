"""Developer tools beside the package, not in it: the benchmark, the month generator, the demo and
the emulator launcher. Run from the repository root (`python -m lake_dev.demo`, or the make
targets); a deployment imports `lake_assets` only."""
