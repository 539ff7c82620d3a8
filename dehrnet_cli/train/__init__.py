"""Training with the paper's recipe on one device or many (torchrun): config, data, model_init, loss, loop
(`train.loop.train`), distributed, random_state and resume (exact resume), sampler, run_folder, and
synthetic_model (a few CPU steps on synthetic people, for tests and the accuracy guard).
"""
