"""Scale-out: session detection, location matching and pricing of many entities on a Spark cluster.

Only core.scale.spark imports pyspark, and only the scale command loads it.
"""
