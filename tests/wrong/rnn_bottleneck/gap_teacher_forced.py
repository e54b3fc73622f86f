# cell: accuracy_gap
# loses: test_gap_matches_reference
# Scores teacher-forced predictions (each step fed the true previous token), not the
# model's own greedy output.
def accuracy_gap(length, *, steps=STEPS, seed=SEED):
    models = {}
    for name, attention in (("bottleneck", False), ("attention", True)):
        torch.manual_seed(seed)
        model = cl.Seq2SeqGRU(VOCAB, EMB, HIDDEN, attention=attention)
        cl.train_seq2seq(model, steps=steps, batch_size=BATCH, lengths=TRAIN_LENGTHS, lr=LR,
                         seed=seed, show_progress=False)
        models[name] = model
    src, tgt = cl.seq2seq_batch(N_EVAL, length, VOCAB, generator=torch.Generator().manual_seed(TEST_SEED))
    with torch.no_grad():
        result = {name: cl.sequence_accuracy(m(src, tgt).argmax(-1), tgt)[1] for name, m in models.items()}
    result["gap"] = result["attention"] - result["bottleneck"]
    return result
