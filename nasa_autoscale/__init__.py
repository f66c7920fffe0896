"""nasa_autoscale: access logs -> traffic tables -> forecasts -> autoscaling decisions."""

import os

# LightGBM's OpenMP threads spin while they wait by default. When two steps share the two cores
# (Dagster's multiprocess executor, or a test run beside a benchmark) the spinning threads starve
# each other and a one-minute fit takes many. Passive waiting costs little when alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
