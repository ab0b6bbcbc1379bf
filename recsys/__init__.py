"""Offer recommendation and churn-risk library for loyalty and retention marketing.

The library holds the domain logic (data contract, features, models, ranking);
it imports neither Flask nor an MLflow server.
"""

__version__ = "0.1.0"


import warnings

# pandera imports pyspark.pandas whenever pyspark is installed (the Spark extra), and that warns
# about the pandas version at every import; nothing here uses pyspark.pandas (the Spark exports
# use Spark SQL).
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
