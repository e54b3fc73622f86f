# cell: accuracy_gap
# loses: test_gap_matches_reference
# Trains with the config cell's STEPS and SEED whatever steps and seed are passed.
def accuracy_gap(length: int, *, steps: int = STEPS, seed: int = SEED) -> dict[str, float]:
    models = {}
    for name, attention in (("bottleneck", False), ("attention", True)):
        torch.manual_seed(SEED)
        model = cl.Seq2SeqGRU(VOCAB, EMB, HIDDEN, attention=attention)
        cl.train_seq2seq(model, steps=STEPS, batch_size=BATCH, lengths=TRAIN_LENGTHS, lr=LR,
                         seed=SEED, show_progress=False)
        models[name] = model
    src, tgt = cl.seq2seq_batch(N_EVAL, length, VOCAB, generator=torch.Generator().manual_seed(TEST_SEED))
    result = {name: cl.sequence_accuracy(model.greedy_decode(src)[0], tgt)[1] for name, model in models.items()}
    result["gap"] = result["attention"] - result["bottleneck"]
    return result
