"""nasa_autoscale: access logs -> traffic tables -> forecasts -> autoscaling decisions."""
