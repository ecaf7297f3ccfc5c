"""Evaluation metrics: pure functions on images and features, their running state, and the feature networks.

    features          the FeatureNet interface: FID Inception, torchvision models
    classifier        the digit classifier: judge of generated digits and a digits feature net
    fid               FID, KID, Inception Score
    precision_recall  improved precision and recall
    memorization      nearest training neighbours of generated samples
    mode_coverage     modes of the 2-D Gaussian mixtures (ganzoo.data.toys) a generator reaches
    streams           what evaluation keeps while generated batches stream past (update/compute)
    evaluate          sample a generator and score it, with provenance and cached real statistics

Nothing is imported here, so `import ganzoo.metrics` stays free of torch.
"""
