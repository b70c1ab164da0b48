"""JAX start-up shared by the test worker scripts (run as subprocesses).

The inherited XLA_FLAGS (8 fake devices from conftest) are replaced by the
worker's own device count before JAX is imported, and cross-process
collectives use gloo so that several processes on loopback form one job.
"""

import os


def start_cpu_jax(devices: int):
  """Imports and configures JAX with `devices` CPU devices; returns it."""
  os.environ['XLA_FLAGS'] = ''
  os.environ['JAX_NUM_CPU_DEVICES'] = str(devices)
  os.environ['JAX_PLATFORMS'] = 'cpu'
  import jax

  jax.config.update('jax_num_cpu_devices', devices)
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  return jax
