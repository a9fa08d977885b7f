"""gluon.model_zoo.vision (issue 11): MXNet 1.9's families with MXNet's structure and parameter
names, forward passes on small inputs, get_model, and pretrained parameters from a local store
(no network): the missing-file and wrong-file errors, and a file in MXNet's legacy format."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import nd
from tapegrad.gluon.model_zoo import model_store, vision

RNG = np.random.default_rng(3)


@pytest.fixture(autouse=True)
def fresh_names():
    with mx.name.NameManager():
        yield


def keys(net) -> list[str]:
    return list(net.collect_params().keys())


# parameter names of MXNet's models as they appear in files exported from MXNet 1.x (public
# ONNX/TVM conversions of the model-zoo networks and feature-extraction scripts name them)
DOCUMENTED = {
    "resnet18_v1": [
        "resnetv10_conv0_weight",
        "resnetv10_batchnorm0_gamma",
        "resnetv10_stage1_conv0_weight",
        "resnetv10_stage1_conv3_weight",
        "resnetv10_stage2_conv0_weight",
        "resnetv10_stage2_conv2_weight",  # stage 2's projection shortcut
        "resnetv10_stage2_conv4_weight",
        "resnetv10_dense0_weight",
    ],
    "mobilenetv2_1.0": [
        "mobilenetv20_features_conv0_weight",
        "mobilenetv20_features_batchnorm0_beta",
        "mobilenetv20_features_linearbottleneck0_conv0_weight",
        "mobilenetv20_features_linearbottleneck0_batchnorm0_running_mean",
        "mobilenetv20_output_pred_weight",
    ],
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_parameter_names(name):
    names = keys(vision.get_model(name))
    for n in DOCUMENTED[name]:
        assert n in names, n


def test_every_family_builds_with_mxnet_prefixes():
    prefixes = {
        "alexnet": "alexnet0_",
        "vgg16": "vgg0_",
        "vgg19_bn": "vgg0_",
        "resnet50_v1": "resnetv10_",
        "resnet152_v2": "resnetv20_",
        "densenet121": "densenet0_",
        "squeezenet1.0": "squeezenet0_",
        "mobilenet0.25": "mobilenet0_",
        "mobilenetv2_0.5": "mobilenetv20_",
        "inceptionv3": "inception30_",
    }
    for name, prefix in prefixes.items():
        with mx.name.NameManager():
            net = vision.get_model(name)
        names = keys(net)
        assert all(n.startswith(prefix) for n in names), name
    # counts follow from the architectures: ResNet-50 V1 has 53 convolutions (1 + 16 * 3 +
    # 4 projections), 53 BatchNorms (4 parameters each) and the dense layer; its 1x1
    # bottleneck convolutions have biases in MXNet's V1 (16 * 2)
    with mx.name.NameManager():
        names = keys(vision.resnet50_v1())
    assert sum(n.endswith("_weight") and "conv" in n for n in names) == 53
    assert sum(n.endswith("running_var") for n in names) == 53
    assert sum(n.endswith("_bias") and "conv" in n for n in names) == 32
    assert len(names) == 53 + 32 + 53 * 4 + 2
    with mx.name.NameManager():
        names = keys(vision.densenet121())
    # 1 stem + 2 per dense layer (58) + 3 transitions
    assert sum("conv" in n for n in names) == 1 + 2 * 58 + 3
    assert names[-2:] == ["densenet0_dense0_weight", "densenet0_dense0_bias"]
    with mx.name.NameManager():
        names = keys(vision.inception_v3())
    assert "inception30_A1_conv0_weight" in names and "inception30_E2_conv8_weight" in names
    assert sum("conv" in n for n in names) == 94


def test_alexnet_vgg_and_squeezenet_structure():
    assert keys(vision.alexnet()) == [
        f"alexnet0_{layer}{i}_{w}"
        for layer, n in (("conv", 5), ("dense", 3))
        for i in range(n)
        for w in ("weight", "bias")
    ]
    names = keys(vision.vgg11())
    assert [n for n in names if n.endswith("_weight")] == [
        f"vgg0_conv{i}_weight" for i in range(8)
    ] + [f"vgg0_dense{i}_weight" for i in range(3)]
    bn = keys(vision.vgg11_bn())
    assert sum(n.endswith("_gamma") for n in bn) == 8
    # squeezenet: 1 stem conv + 8 fire modules of 3 convolutions + the classifier conv
    sq = keys(vision.squeezenet1_1())
    assert sq[-2:] == ["squeezenet0_conv25_weight", "squeezenet0_conv25_bias"]


@pytest.mark.parametrize(
    "name, size, classes",
    [
        ("resnet18_v1", 32, 10),
        ("resnet18_v2", 32, 7),
        ("resnet50_v2", 32, 5),
        ("mobilenet0.25", 64, 10),
        ("mobilenetv2_0.25", 64, 10),
        ("squeezenet1.1", 224, 10),
        ("inceptionv3", 299, 10),
    ],
)
def test_forward_shapes(name, size, classes):
    net = vision.get_model(name, classes=classes)
    # (random initialization of Inception's 24M parameters would cost more than its forward)
    net.initialize(mx.init.Zero() if name == "inceptionv3" else mx.init.Xavier())
    out = net(nd.array(RNG.standard_normal((1, 3, size, size))))
    assert out.shape == (1, classes)
    assert np.isfinite(out.asnumpy()).all()


def test_densenet_forward_small_configuration():
    # DenseNet-121's code with fewer, thinner layers (the full network costs seconds here)
    net = vision.DenseNet(16, 4, [1, 2, 1, 1], bn_size=2, classes=6)
    net.initialize()
    out = net(nd.array(RNG.standard_normal((1, 3, 224, 224))))
    assert out.shape == (1, 6)
    p = net.collect_params()
    # each dense layer concatenates growth_rate=4 channels to its input, each transition
    # halves them: stem 16 -> 20 -> 10 -> 18 -> 9 -> 13 -> 6 -> 10
    assert p["densenet0_stage1_conv0_weight"].shape == (8, 16, 1, 1)  # bn_size * growth_rate
    assert p["densenet0_conv1_weight"].shape == (10, 20, 1, 1)
    assert p["densenet0_conv2_weight"].shape == (9, 18, 1, 1)
    assert p["densenet0_conv3_weight"].shape == (6, 13, 1, 1)
    assert p["densenet0_dense0_weight"].shape == (6, 10)


def test_resnet_shapes_after_deferred_init():
    net = vision.resnet18_v1(classes=10, thumbnail=True)
    net.initialize()
    net(nd.ones((2, 3, 32, 32)))
    p = net.collect_params()
    assert p["resnetv10_conv0_weight"].shape == (64, 3, 3, 3)  # the thumbnail stem
    assert p["resnetv10_stage4_conv0_weight"].shape == (512, 256, 3, 3)
    assert p["resnetv10_stage4_conv2_weight"].shape == (512, 256, 1, 1)  # projection
    assert p["resnetv10_dense0_weight"].shape == (10, 512)
    v2 = vision.resnet18_v2()
    assert v2.collect_params()["resnetv20_batchnorm0_gamma"].grad_req == "null"  # scale=False


def test_get_model_unknown_name():
    with pytest.raises(ValueError, match=r"(?s)Model resnet19_v1 is not supported.*resnet18_v1"):
        vision.get_model("resnet19_v1")
    assert isinstance(vision.get_model("ResNet18_V1"), vision.ResNetV1)


# --------------------------------------------------------------------------- pretrained


def test_pretrained_missing_file_says_which_file_to_put_where(tmp_path):
    with pytest.raises(model_store.ModelFileError) as e:
        vision.get_model("resnet18_v1", pretrained=True, root=str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path / "resnet18_v1-a0666292.params") in msg
    assert "does not download" in msg and "Fix:" in msg
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(model_store.ModelFileError, match="squeezenet1.1-33ba0f93.params"):
        vision.squeezenet1_1(pretrained=True, root=str(tmp_path))
    with pytest.raises(model_store.ModelFileError, match="mobilenetv2_0.5-aabd26cd.params"):
        vision.get_model("mobilenetv2_0.5", pretrained=True, root=str(tmp_path))


def test_pretrained_default_root_is_mxnet_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxhome"))
    with pytest.raises(model_store.ModelFileError) as e:
        vision.alexnet(pretrained=True)
    assert str(tmp_path / "mxhome" / "models" / "alexnet-44335d1f.params") in str(e.value)


def test_pretrained_file_that_is_not_mxnets_is_refused(tmp_path):
    (tmp_path / "vgg11-dd221b16.params").write_bytes(b"not the file")
    with pytest.raises(model_store.ModelFileError, match=r"SHA-1 .* expected dd221b16"):
        vision.vgg11(pretrained=True, root=str(tmp_path))


def test_pretrained_legacy_file_loads(tmp_path, monkeypatch):
    """MXNet's model-store files hold names relative to the network's prefix
    (``stage1_conv0_weight``), as ``save_params`` wrote them."""
    src = vision.resnet18_v1(classes=4)
    src.initialize(mx.init.Xavier())
    x = nd.array(RNG.standard_normal((1, 3, 32, 32)))
    want = src(x).asnumpy()
    path = tmp_path / "resnet18_v1-a0666292.params"
    with pytest.warns(DeprecationWarning):
        src.save_params(str(path))
    saved = nd.load(str(path))
    assert "stage1_conv0_weight" in saved and "dense0_weight" in saved
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    monkeypatch.setitem(model_store._model_sha1, "resnet18_v1", digest)
    monkeypatch.setattr(model_store, "short_hash", lambda name: "a0666292")
    with mx.name.NameManager():  # another automatic prefix than the saved network's
        net = vision.get_model("resnet18_v1", classes=4, pretrained=True, root=str(tmp_path))
    np.testing.assert_array_equal(net(x).asnumpy(), want)
