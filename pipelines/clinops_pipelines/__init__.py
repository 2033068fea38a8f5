"""KFP v2 pipelines of clinops; components are thin typed wrappers over clinops functions."""
