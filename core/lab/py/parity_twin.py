# The PyTorch twin of an ablation ladder (`npm run parity`, scripts/parity.mjs): the same recipe written in PyTorch
# and torchvision, rung by rung and seed by seed, to compare with `tricks ablate`. It reads one JSON job on stdin
# (written by scripts/parity.mjs from the resolved tricks configs) and prints one JSON line per finished run.
#
# What is mirrored from tricks (read from the job, never guessed):
# - data: the Fashion-MNIST IDX files, the same training subset (tricks' indices) and the same per-epoch order
#   (tricks' ShuffleSampler), pixels / 255, the whole test set; drop_last as tricks' loader;
# - model: small-cnn (core/models/src/small-cnn.ts): conv3x3 (no bias) -> BN -> ReLU -> maxpool 2, twice (width,
#   2 width), flatten in NHWC order, dense 128 + ReLU, dense classes; the model's options `init` ("torch": PyTorch's
#   own reset_parameters(), small-cnn's default; "glorot": tfjs-layers' Glorot-uniform kernels with Keras fans and
#   zero biases), `bnMomentum` (tfjs sense, default 0.9; torch's momentum = 1 - it) and `bnEpsilon` (1e-5), which
#   job.twin may override (`--twin init=glorot,bnMomentum=0.99,bnEpsilon=0.001` is tfjs-layers' model; `--twin
#   dtype=float64` trains any model in float64). The moving
#   variance: tfjs-layers averages the biased batch variance, torch the unbiased one, a factor N/(N-1) with N =
#   batch x height x width (25,088 at batch 32 and 28 px): not mirrored;
# - optimizer: torch.optim.SGD(momentum, nesterov, weight_decay) on every parameter (tricks decays BN and biases
#   too unless no-bias-decay is on), the lr set every step from tricks' closed form: constant, cosine (with its
#   warmupEpochs / warmupLr / etaMin) and onecycle (PyTorch's OneCycleLR, two cosine phases, lr only: tricks
#   cycles no momentum);
# - loss: cross-entropy, mean over the batch; label smoothing as F.cross_entropy(label_smoothing=eps);
# - augment (each instance of the plugin in the config's order; preset none, normalize false): RandomResizedCrop
#   (tricks' scale / ratio, output the image size, bilinear) or RandomCrop(size, padding), then
#   RandomHorizontalFlip(p), one draw per image on the [0,1] image (zero fill); then colour jitter with
#   torchvision's functional ops and factors drawn as ColorJitter.get_params, per image, with tricks' two
#   departures mirrored: ONE random order of the four ops per batch (torchvision: one per image) and a per-image
#   `prob` (torchvision: RandomApply). Saturation and hue leave 1-channel images as they are in both. Not mirrored:
#   tricks' fast RandomResizedCrop (augment `exact: false`, the default) reads the pixel just outside the crop on
#   its outer half-pixel ring where torchvision repeats the crop's edge (max abs 0.09 there, interior < 1e-5);
# - autoaugment: T.AutoAugment (cifar10 / imagenet / svhn) or T.RandAugment(n, m, bins), nearest, per image,
#   after every augment instance (tricks' stage). torchvision's Posterize / Equalize take uint8 only: the twin
#   rounds the image to uint8 for the policy and back to float; tricks applies the ops to the float image;
# - mixing (timm's Mixup in batch mode; tricks' cutmix taps before mixup and a mixed batch is not mixed again):
#   cutmix (Yun et al. 2019): lambda ~ Beta(alpha, alpha), a box of side sqrt(1 - lambda) of each image side
#   (truncated), centre uniform, clipped at the borders, lambda corrected to the clipped area, pasted from a
#   random permutation, with prob, switchProb (then mixup with mixupAlpha) and offEpoch; mixup (Zhang et al.
#   2018): one lambda ~ Beta(alpha, alpha) per batch, with prob and offEpoch; the loss lam CE(y) + (1 - lam)
#   CE(y[perm]) (= CE of the mixed soft targets; label smoothing applies to both);
# - kd (Hinton et al. 2015, plugins/kd): the teacher `tricks ablate` trains (the rung before the first kd rung with
#   the teacher's model, the first seed; job rung.teacher from scripts/parity.mjs), trained once per job in torch,
#   then in eval mode on the student's augmented, mixed batch; the loss (1 - alpha) x the supervised loss + alpha
#   T^2 KL(softmax(t/T) || softmax(s/T)) (batchmean). Tricks distils from its own teacher, the twin from its own:
#   the two teachers are trained alike, not equal. A kd rung's teacherSettings (other images, other epochs) come as
#   job.teacherData: the teacher's own subset (tricks' limit) and per-epoch orders.
# Anything the twin does not know is refused with a message (the harness then prints "no twin" for the rung).
import json, math, sys, time, gzip, os
import numpy as np

try:
    import torch, torch.nn as nn, torch.nn.functional as F
    import torchvision.transforms as T
    import torchvision.transforms.functional as TF
except ImportError as e:
    print(json.dumps({"error": f"PyTorch/torchvision not importable with {sys.executable}: {e}"})); sys.exit(0)


def idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    nd = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def find(d, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise SystemExit(json.dumps({"error": f"no {stem}[.gz] in {d}"}))


def glorot_(w, fan_in, fan_out):
    lim = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        w.uniform_(-lim, lim)


class SmallCnn(nn.Module):
    def __init__(self, width, classes, hw, bn_momentum, bn_eps, init):
        super().__init__()
        c = [1, width, width * 2]
        self.convs = nn.ModuleList([nn.Conv2d(c[i], c[i + 1], 3, padding=1, bias=False) for i in range(2)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(c[i + 1], eps=bn_eps, momentum=1 - bn_momentum) for i in range(2)])
        s = hw // 4
        self.fc1 = nn.Linear(c[2] * s * s, 128)
        self.out = nn.Linear(128, classes)
        if init == "glorot":  # tfjs-layers' defaults; "torch": PyTorch's own reset_parameters()
            for conv in self.convs:
                o, i, kh, kw = conv.weight.shape
                glorot_(conv.weight, i * kh * kw, o * kh * kw)
            for lin in (self.fc1, self.out):
                glorot_(lin.weight, lin.in_features, lin.out_features)
                nn.init.zeros_(lin.bias)

    def forward(self, x):
        for conv, bn in zip(self.convs, self.bns):
            x = F.max_pool2d(F.relu(bn(conv(x))), 2)
        x = x.permute(0, 2, 3, 1).flatten(1)  # NHWC flatten, as tfjs
        return self.out(F.relu(self.fc1(x)))


def he_normal_(w):
    """tfjs-layers' heNormal: VarianceScaling(2, fanIn, 'normal'), a normal truncated at 2 std, std corrected by
    .87962566103423978 (Keras's constant) so that the truncated draw has variance 2 / fan_in."""
    fan_in = w.shape[1] * w.shape[2] * w.shape[3]
    std = math.sqrt(2.0 / fan_in) / .87962566103423978
    with torch.no_grad():
        nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std)


class ConvBn(nn.Module):
    """core/models/src/resnet-cifar.ts convBn: conv (no bias, TF 'same' padding, heNormal) + BN 0.9 / 1e-5."""

    def __init__(self, cin, cout, stride, k=3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.k, self.stride = k, stride
        he_normal_(self.conv.weight)

    def forward(self, x):
        # TF 'same': total padding max(k - s, 0) (even input), the extra pixel at the bottom/right
        h = x.shape[2]
        total = max(self.k - self.stride, 0) if h % self.stride == 0 else max(self.k - h % self.stride, 0)
        a = total // 2
        x = F.pad(x, (a, total - a, a, total - a))
        return self.bn(self.conv(x))


class ResNetCifar(nn.Module):
    """core/models/src/resnet-cifar.ts: 3x3 stem 16, three stages of (depth-2)/6 basic blocks (16, 32, 64 x width),
    stride 2 at stages 2 and 3, 1x1 projection shortcuts where the shape changes, GAP, dense (tfjs default init:
    Glorot-uniform, zero bias)."""

    def __init__(self, depth, classes, width=1):
        super().__init__()
        n = (depth - 2) // 6
        self.stem = ConvBn(1, 16 * width, 1)
        blocks, cin = [], 16 * width
        for s, base in enumerate([16, 32, 64]):
            ch = base * width
            for b in range(n):
                stride = 2 if s > 0 and b == 0 else 1
                blocks.append(nn.ModuleDict({"c1": ConvBn(cin, ch, stride), "c2": ConvBn(ch, ch, 1),
                                             **({"down": ConvBn(cin, ch, stride, 1)} if stride != 1 or cin != ch else {})}))
                cin = ch
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Linear(cin, classes)
        glorot_(self.out.weight, cin, classes)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for b in self.blocks:
            y = b["c2"](F.relu(b["c1"](x)))
            x = F.relu(y + (b["down"](x) if "down" in b else x))
        return self.out(x.mean((2, 3)))


def schedule(name, opts, base, step, total, steps_per_epoch):
    """The lr at a step, tricks' closed forms (core/trainer/src/optim/schedule.ts) with its option defaults."""
    if name == "constant":
        return base
    if name == "cosine":  # optional linear warmup, then cosine to etaMin (CosineAnnealingLR's closed form)
        w_lr, eta = opts.get("warmupLr", 0), opts.get("etaMin", 0)
        w = min(math.floor(opts.get("warmupEpochs", 0) * steps_per_epoch + 0.5), total)  # JS Math.round (halves up)
        if step < w:
            return w_lr + (base - w_lr) * step / w
        span = max(total - w, 1)
        t = min(step - w, span) / span
        return eta + (base - eta) * (1 + math.cos(math.pi * t)) / 2
    if name == "onecycle":  # PyTorch's OneCycleLR, anneal 'cos', two phases, lr only (no momentum cycling)
        pct, div, final_div = opts.get("pctStart", 0.3), opts.get("divFactor", 25), opts.get("finalDivFactor", 1e4)
        max_lr = opts.get("maxLr", base)
        initial = max_lr / div
        low = initial / final_div
        s = min(step, total - 1)
        end1, end2 = pct * total - 1, total - 1
        cos = lambda a, b, p: b + (a - b) / 2 * (math.cos(math.pi * p) + 1)  # noqa: E731
        if s <= end1:
            return cos(initial, max_lr, s / end1 if end1 > 0 else 1)
        return cos(max_lr, low, (s - end1) / (end2 - end1))
    raise ValueError(f"schedule {name}: not in the twin")


def color_jitter(x, cj):
    """tricks' colorJitter on a batch (plugins/augment/src/index.ts): per image an on/off flag (prob) and factors
    drawn as torchvision's ColorJitter.get_params, ONE random order of the four ops for the whole batch (torchvision
    draws one per image), torchvision's functional ops; saturation and hue leave 1-channel images as they are."""
    n, c = x.shape[0], x.shape[1]
    on = torch.rand(n) < cj.get("prob", 1)
    rng = lambda v, centre: (max(0, centre - v), centre + v) if v else None  # noqa: E731
    def draw(r, ident):
        return [float(torch.empty(1).uniform_(r[0], r[1])) if (o and r) else ident for o in on.tolist()]
    b, ct, s = draw(rng(cj.get("brightness"), 1), 1), draw(rng(cj.get("contrast"), 1), 1), draw(rng(cj.get("saturation"), 1), 1)
    hu = draw((-cj["hue"], cj["hue"]) if cj.get("hue") else None, 0)
    ops = {0: ("brightness", TF.adjust_brightness, b), 1: ("contrast", TF.adjust_contrast, ct),
           2: ("saturation", TF.adjust_saturation, s), 3: ("hue", TF.adjust_hue, hu)}
    for k in torch.randperm(4).tolist():
        key, fn, f = ops[k]
        if cj.get(key) and (k < 2 or c == 3):
            x = torch.stack([fn(img, fk) for img, fk in zip(x, f)])
    return x


def augment_op(po, hw):
    """One augment plugin instance (plugins/augment/src/pipeline.ts, preset none): crop (RandomResizedCrop or
    RandomCrop) and flip per image, then colour jitter per batch."""
    if po.get("preset") != "none" or po.get("rotate") or po.get("affine") or po.get("erasing") or po.get("cutout") \
            or po.get("normalize"):
        raise ValueError("augment beyond randomResizedCrop/padCrop/flip/colorJitter (preset none, normalize false): not in the twin")
    ops = []
    rrc = po.get("randomResizedCrop")
    if rrc:
        r = {} if rrc is True else rrc
        ops.append(T.RandomResizedCrop(hw, scale=tuple(r.get("scale", (0.08, 1))), ratio=tuple(r.get("ratio", (3 / 4, 4 / 3)))))
    elif po.get("padCrop"):
        ops.append(T.RandomCrop(hw, padding=4 if po["padCrop"] is True else int(po["padCrop"])))
    if po.get("flip"):
        ops.append(T.RandomHorizontalFlip(po["flip"]))
    geo = T.Compose(ops) if ops else None
    cj = po.get("colorJitter")
    cj = cj if cj and any(cj.get(k) for k in ("brightness", "contrast", "saturation", "hue")) else None

    def apply(x):
        if geo is not None:
            x = torch.stack([geo(img) for img in x])
        return color_jitter(x, cj) if cj else x
    return apply


def autoaugment_op(po, hw):
    """plugins/autoaugment (after augment's crop/flip/colour, before mixing): torchvision's AutoAugment or
    RandAugment per image. torchvision's Posterize and Equalize take uint8 only, so the twin rounds the [0, 1] image
    to uint8, applies the policy and divides by 255 again; tricks applies the ops to the float image (solarize's
    threshold / 255), without that rounding."""
    policy = po.get("policy", "auto")
    if policy == "auto":
        policy = "cifar10" if hw <= 64 else "imagenet"
    interp = {"nearest": T.InterpolationMode.NEAREST, "bilinear": T.InterpolationMode.BILINEAR}[po.get("interpolation", "nearest")]
    if policy == "randaugment":
        aa = T.RandAugment(po.get("n", 2), po.get("m", 9), po.get("bins", 31), interp)
    else:
        aa = T.AutoAugment({"cifar10": T.AutoAugmentPolicy.CIFAR10, "imagenet": T.AutoAugmentPolicy.IMAGENET,
                            "svhn": T.AutoAugmentPolicy.SVHN}[policy], interp)
    prob = po.get("prob", 1)

    def apply(x):
        u = (x * 255).round().clamp(0, 255).to(torch.uint8)
        u = torch.stack([aa(img) if prob >= 1 or float(torch.rand(1)) < prob else img for img in u])
        return u.float() / 255
    return apply


def cutmix_box(rng, h, w, lam):
    """tricks' cutmixBox (plugins/cutmix/src/box.ts, the authors' and timm's rand_bbox): side sqrt(1 - lam) of each
    image side (truncated), centre uniform, clipped; lambda corrected to the clipped box's area."""
    cut = math.sqrt(1 - lam)
    cw, ch = int(w * cut), int(h * cut)
    cx, cy = int(rng.integers(w)), int(rng.integers(h))
    x1, x2 = min(max(cx - cw // 2, 0), w), min(max(cx + cw // 2, 0), w)
    y1, y2 = min(max(cy - ch // 2, 0), h), min(max(cy + ch // 2, 0), h)
    return (y1, y2, x1, x2), 1 - (y2 - y1) * (x2 - x1) / (h * w)


def mix_batch(x, mixers, rng, epoch):
    """cutmix (taps before mixup) then mixup, the first that mixes wins (tricks' meta.mix); returns x, lam, perm."""
    for kind, o in mixers:
        if o.get("offEpoch") is not None and epoch >= o["offEpoch"]:
            continue
        if o.get("prob", 1) < 1 and rng.random() >= o["prob"]:
            continue
        if kind == "cutmix" and not (o.get("switchProb", 0) > 0 and rng.random() < o["switchProb"]):
            (y1, y2, x1, x2), lam = cutmix_box(rng, x.shape[2], x.shape[3], float(rng.beta(o.get("alpha", 1.0), o.get("alpha", 1.0))))
            perm = torch.randperm(len(x))
            xm = x.clone()
            xm[:, :, y1:y2, x1:x2] = x[perm][:, :, y1:y2, x1:x2]
            return xm, lam, perm
        a = o.get("mixupAlpha", 0.4) if kind == "cutmix" else o.get("alpha", 0.4)
        lam = float(rng.beta(a, a))
        perm = torch.randperm(len(x))
        return lam * x + (1 - lam) * x[perm], lam, perm
    return x, None, None


_teachers = {}


def teacher_for(rung):
    """The kd teacher `tricks ablate` trains: the recipe of the rung before kd with the teacher's model, its first
    seed (job rung.teacher, from scripts/parity.mjs); trained once per job, then used in eval mode (BN's moving
    statistics), as tricks' kd runs the saved teacher's predict."""
    t = rung.get("teacher")
    if t is None:
        raise ValueError("kd without a teacherModel teacher: not in the twin")
    key = json.dumps(t, sort_keys=True)
    if key not in _teachers:
        # job.teacherData: the teacher's own subset and orders when its teacherSettings give it other images or epochs
        rec, model = run({"config": t["config"], "ladderStep": -1, "stepName": "teacher", "trick": "teacher"}, t["seed"], True,
                         job.get("teacherData"))
        model.eval()
        for q in model.parameters():
            q.requires_grad_(False)
        print(json.dumps({"teacher": rec["top1"], "seconds": rec["seconds"], "trainItems": rec["trainItems"], "steps": rec["steps"]}),
              flush=True)
        _teachers[key] = model
    return _teachers[key]


def run(rung, seed, keep_model=False, data=None):
    cfg = rung["config"]
    data = data or job
    sub = torch.tensor(data["trainIndices"], dtype=torch.long)
    xtr, ytr = XF[sub], YF[sub]
    if any(p["name"] == "kd" for p in cfg["plugins"]):
        teacher_for(rung)  # before this run's seed, so the student's random stream does not depend on it
    torch.manual_seed(seed)
    m = cfg["model"]
    mo = m.get("options") or {}
    if m["name"] == "small-cnn":
        width = int(mo.get("width", 32))
        # small-cnn's options and defaults (core/models/src/small-cnn.ts); job.twin overrides them for experiments
        tw = {"init": mo.get("init", "torch"), "bnMomentum": mo.get("bnMomentum", 0.9), "bnEpsilon": mo.get("bnEpsilon", 1e-5),
              **job.get("twin", {})}
        model = SmallCnn(width, 10, 28, tw["bnMomentum"], tw["bnEpsilon"], tw["init"])
    elif m["name"] in ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110"):
        model = ResNetCifar(int(m["name"][6:]), 10, int(mo.get("width", 1)))
    else:
        raise ValueError(f"model {m['name']}: not in the twin")
    # job.twin dtype=float64: the same run in float64 (how much float32 rounding moves a result)
    dt = torch.float64 if job.get("twin", {}).get("dtype") == "float64" else torch.float32
    model = model.to(dt)
    xtr = xtr.to(dt)
    o = cfg["optimizer"]
    if o["name"] != "sgd":
        raise ValueError(f"optimizer {o['name']}: not in the twin")
    opt = torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=o.get("momentum", 0), nesterov=o.get("nesterov", False),
                          weight_decay=o.get("weightDecay", 0))
    augs, smoothing, mixers, kd = [], 0.0, [], None
    beta = np.random.default_rng(seed)
    for p in cfg["plugins"]:
        name, po = p["name"], p.get("options", {})
        if name == "augment":
            augs.append((0, augment_op(po, 28)))
        elif name == "autoaugment":
            augs.append((10, autoaugment_op(po, 28)))
        elif name == "label-smoothing":
            smoothing = po.get("epsilon", 0.1)
        elif name in ("mixup", "cutmix"):
            mixers.append((name, po))
        elif name == "kd":  # Hinton et al. 2015 as plugins/kd: alpha T^2 KL(p_t/T || p_s/T) (batchmean) + (1 - alpha) CE
            kd = (teacher_for(rung), float(po.get("temperature", 2)), float(po.get("alpha", 0.7)))
        else:
            raise ValueError(f"plugin {name}: not in the twin")
    mixers.sort(key=lambda m: m[0] != "cutmix")  # cutmix taps before mixup
    augs = [f for _, f in sorted(augs, key=lambda a: a[0])]  # the batch hook's stages: augment, then autoaugment
    bs, epochs = cfg["batchSize"], cfg["epochs"]
    orders = data["epochOrders"][str(seed)]
    steps_per_epoch = len(sub) // bs
    total = steps_per_epoch * epochs
    sched = cfg["schedule"]
    step = 0
    t0 = time.time()
    curve = []
    for ep in range(epochs):
        order = torch.tensor(orders[ep], dtype=torch.long)
        model.train()
        seen, loss_sum = 0, 0.0
        for b in range(steps_per_epoch):
            ii = order[b * bs:(b + 1) * bs]
            x, y = xtr[ii], ytr[ii]
            for aug in augs:
                x = aug(x)
            lr = schedule(sched["name"], {k: v for k, v in sched.items() if k != "name"}, o["lr"], step, total, steps_per_epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            x, lam, perm = mix_batch(x, mixers, beta, ep)
            logits = model(x)
            if lam is not None:  # soft targets lam*y + (1-lam)*y[perm], smoothed after mixing: CE is linear in the target
                loss = lam * F.cross_entropy(logits, y, label_smoothing=smoothing) + \
                    (1 - lam) * F.cross_entropy(logits, y[perm], label_smoothing=smoothing)
            else:
                loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
            if kd is not None:  # the teacher sees the same augmented, mixed batch (kd's batch tap is the last)
                teacher, T, alpha = kd
                with torch.no_grad():
                    t_logits = teacher(x)
                kl = F.kl_div(F.log_softmax(logits / T, 1), F.log_softmax(t_logits / T, 1), reduction="batchmean", log_target=True)
                loss = (1 - alpha) * loss + alpha * T * T * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            seen += len(y)
            step += 1
        model.eval()
        correct = 0
        with torch.no_grad():
            for k in range(0, len(xte), 500):
                correct += (model(xte[k:k + 500].to(dt)).argmax(1) == yte[k:k + 500]).sum().item()
        curve.append({"epoch": ep + 1, "train_loss": loss_sum / seen, "val_top1": correct / len(xte), "lr": lr})
    rec = {"id": f"torch-s{rung['ladderStep'] + 1}-seed{seed}", "stepName": rung["stepName"], "trick": rung["trick"],
            "ladderStep": rung["ladderStep"], "seed": seed, "top1": curve[-1]["val_top1"], "seconds": time.time() - t0,
            "epochs": curve, "steps": step, "trainItems": len(sub), "backend": f"torch {torch.__version__} cpu"}
    return (rec, model) if keep_model else rec


def main():
    global job, XF, YF, xte, yte
    job = json.load(sys.stdin)
    torch.set_num_threads(int(job.get("threads", 1)))
    D = job["dataDir"]
    XF = torch.from_numpy(idx(find(D, "train-images-idx3-ubyte")).astype(np.float32) / 255.0).unsqueeze(1)
    YF = torch.from_numpy(idx(find(D, "train-labels-idx1-ubyte")).astype(np.int64))
    xte = torch.from_numpy(idx(find(D, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0).unsqueeze(1)
    yte = torch.from_numpy(idx(find(D, "t10k-labels-idx1-ubyte")).astype(np.int64))
    for rung in job["rungs"]:
        for seed in rung.get("seeds", job["seeds"]):  # the seeds not yet in OUT/twin-runs.jsonl
            try:
                rec = run(rung, seed)
            except ValueError as e:
                rec = {"skip": str(e), "ladderStep": rung["ladderStep"], "stepName": rung["stepName"], "seed": seed}
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
