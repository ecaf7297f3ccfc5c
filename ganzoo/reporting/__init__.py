"""Pictures and pages made from a finished run folder: loss curves, a samples GIF, an HTML report."""
