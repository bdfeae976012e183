"""Parses a Prometheus text exposition from standard input with Python's
`prometheus_client` parser, independent of Portcullis, and prints what it read as
JSON: {"families": {name: type}, "samples": [{"name", "labels", "value"}]}. A value
that is not a number (NaN) is null. Exits non-zero, with the parser's error, on
anything the parser refuses.

    curl -s 127.0.0.1:9091/metrics | parse_metrics.py
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    families = {}
    samples = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        families[family.name] = family.type
        for sample in family.samples:
            value = None if math.isnan(sample.value) else sample.value
            samples.append({"name": sample.name, "labels": sample.labels, "value": value})
    json.dump({"families": families, "samples": samples}, sys.stdout)


if __name__ == "__main__":
    main()
