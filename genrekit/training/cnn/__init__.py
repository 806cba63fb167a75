"""Training a CNN genre model: crops, checkpoints that survive SIGKILL, ONNX export, a bundle.

>>> from genrekit.training.cnn.options import CnnOptions             # doctest: +SKIP
>>> from genrekit.training.cnn.trainer import CnnTrainer
>>> CnnTrainer("genres/", CnnOptions(arch="shortres", split="artist", artists="GTZANindex.txt",
...                                  epochs=30)).train("runs/shortres").folder
PosixPath('runs/shortres')

The modules, by job: :mod:`~genrekit.training.cnn.options` (what a run is told, no
PyTorch), :mod:`~genrekit.training.cnn.tracks` (the dataset's spectrograms in memory),
:mod:`~genrekit.training.cnn.split` (the sides of the split), :mod:`~genrekit.training.cnn.crops`
(training crops, augmentation, evaluation windows), :mod:`~genrekit.training.cnn.network`
(input, architecture, optimiser, fine-tuning stages), :mod:`~genrekit.training.cnn.loop` (the
epochs), :mod:`~genrekit.training.cnn.checkpoint` (the resume state),
:mod:`~genrekit.training.cnn.export` (ONNX and the bundle), and
:mod:`~genrekit.training.cnn.trainer` (:class:`~genrekit.training.cnn.trainer.CnnTrainer`,
which runs them in this order). ``python -m genrekit.training.cnn`` takes the options of
``genrekit train --model cnn`` (:mod:`genrekit.commands.train_cnn`).

What happens
------------
1. Every track's log-mel spectrogram is computed once through the feature cache and
   held in memory (:func:`genrekit.training.cnn.tracks.load_tracks`).
2. The tracks are split by :func:`genrekit.datasets.splits.make_splits` (one row per track);
   when the split has no validation side, one is carved from the training tracks
   (stratified by genre, artist-disjoint when artists are known).
3. Each epoch draws ``crops_per_track`` random crops of every training track, with
   SpecAugment masks, a random gain and optional mixup; then every validation track is
   scored on its deterministic windows (mean probability per track).
4. After every epoch a checkpoint (model, optimizer, scheduler, RNG states, history,
   best-so-far weights) replaces ``checkpoint.pt`` atomically and ``history.csv`` is
   rewritten. ``resume=True`` continues after the last finished epoch.
5. At the end (``epochs`` reached, or ``patience`` epochs without improvement on the
   validation set) the best-on-validation weights are evaluated on the validation and
   test tracks (:func:`genrekit.evaluation.metrics.evaluate`), exported to ONNX, checked against
   PyTorch, and written as a model bundle in ``out_dir`` with ``results.json``.

Reproducibility
---------------
Weights are initialised after ``torch.manual_seed(seed)``; each epoch reseeds numpy
(crops, masks, mixup) and torch (dropout) from ``(seed, epoch)``, so an epoch is a
function of the weights it starts from and nothing else: a run resumed after a kill
ends with the same weights as one that never stopped (bit for bit on CPU with the same
thread count; GPUs add their own non-determinism).

Fine-tuning
-----------
``arch="musicnn", pretrained=True`` (``--arch musicnn --pretrained``) starts from the
shipped MSD-musicnn weights (:func:`genrekit.models.musicnn_architecture.pretrained`) with a new,
randomly initialised output layer for the user's genres, and trains in stages:

1. **head only**: the new output layer (``head="output"``; ``"dense"`` adds the
   200-unit dense layer and its batch norm) learns at ``lr``; the rest of the network is
   frozen — no gradients, and its batch norms keep the statistics learnt on the Million
   Song Dataset. Without ``unfreeze`` this is the whole run, ``lr`` cosine-annealed over
   ``epochs``.
2. with ``unfreeze`` (``--unfreeze``), after ``head_epochs`` epochs (default half of
   ``epochs``) at a constant ``lr``: **the whole network** at ``unfreeze_lr`` (default
   ``lr / 10``), cosine-annealed to 0 over the remaining epochs, so that the pretrained
   features move little while the new head has already settled.

The stage is a function of the epoch number, so ``--resume`` continues the same schedule.
Without ``pretrained`` the same architecture trains from scratch like the others.

Run folder
----------
``checkpoint.pt`` (resume state), ``history.csv``, ``bundle.json`` + ``model.onnx`` +
``MODEL_CARD.md`` (the bundle: ``genrekit classify --model RUN_DIR``), ``results.json``,
and ``tensorboard/`` when TensorBoard is installed (the layout: :mod:`genrekit.training.run_folder`).
"""
