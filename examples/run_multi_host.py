# run_multi_host.py: python run_multi_host.py <process_id> <num_processes> <coordinator> <out>
# e.g. on each of 2 hosts: python run_multi_host.py 0 2 host0:1234 multi_host.npz (then 1 ...)
import sys

import jax

import td_jax

process_id, num_processes, coordinator, out = sys.argv[1:5]
jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU hosts; GPUs use NCCL
jax.distributed.initialize(coordinator_address=coordinator, num_processes=int(num_processes),
                           process_id=int(process_id))  # fmt: skip
env = td_jax.envs.make("random_mrp", num_states=5, reward="student_t")
result = td_jax.run(["td", "qtd"], {"mrp": env}, [0.03, 0.1], num_seeds=6, num_steps=200,
                    progress=False)  # fmt: skip
if jax.process_index() == 0:
    result.save(out)
