"""Fit the shipped real-bogus model's survey-alert head on the 51 sample ZTF alerts, and record it.

Run from the repository root when the shipped model or the head's features change (seconds)::

    python tools/fit_default_alert_head.py [--dry-run]

`astrokit.inference.sample_alert_head` fits the logistic head over the frozen model's score (fading
alerts in reverse time) and the difference stamp's residual pixels, labels drb >= 0.5, and measures it
out of fold (5 folds, with the spread over 20 other fold assignments). The result replaces
``metrics.json`` ``alert_head`` atomically; the weights and every other figure are not touched.
`train_default` fits the same head for a newly trained model.
"""

import argparse
import json

from rescore_default_model import write_metrics


def main(argv=None):
    """Fit the head and write it into the shipped ``metrics.json`` (see the module)."""
    from astrokit.inference import load_default_model, sample_alert_head

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the head and its figures, write nothing")
    args = parser.parse_args(argv)
    model, metrics = load_default_model()
    head = sample_alert_head(model)
    print(json.dumps(head, indent=1, default=float))
    if not args.dry_run:
        metrics["alert_head"] = head
        print(f"wrote {write_metrics(metrics)}")


if __name__ == "__main__":
    main()
