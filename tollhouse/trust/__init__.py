"""Keep agents honest: trajectories, the gate, idempotent actions, the answer cache."""
