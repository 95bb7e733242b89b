"""audit: the recomputed figures are right (checked against Paddle's own models), every claim
holds, and a claim that is false is reported as failing."""

import json

import numpy as np
import pytest

from numpy_resnext.paper import claims as audit
from numpy_resnext.archs import ARCHS, custom
from numpy_resnext.cli import main

# counted on paddle.vision.models.resnet50 / resnext50_32x4d (Paddle 3.3.1) and torchvision:
# trainable parameters and conv + fc multiply-adds at 224 x 224 (see the paddle lane below)
FRAMEWORK_COUNTS = {"ResNet50": (25_557_032, 4_089_184_256),
                    "ResNeXt50_32x4d": (25_028_904, 4_230_479_872)}


@pytest.fixture(scope="module")
def checks():
    return audit.run_audit()


def test_every_claim_holds(checks):
    failing = [c for c in checks if not c.holds]
    assert not failing, audit.format_audit(failing)
    sections = {c.section for c in checks}
    assert sections == {"Table 1", "Table 2", "widths", "Fig. 3", "SE"}
    # one width line per registered architecture
    assert len([c for c in checks if c.section == "widths"]) == len(ARCHS)


def test_table1_figures_are_the_framework_counts(checks):
    table1 = [c for c in checks if c.section == "Table 1"]
    for arch, (params, macs) in FRAMEWORK_COUNTS.items():
        label = "ResNet-50" if arch == "ResNet50" else "ResNeXt-50 (32x4d)"
        p = next(c for c in table1 if c.claim == f"{label} parameters")
        f = next(c for c in table1 if c.claim.startswith(f"{label} FLOPs"))
        assert f"{params:,}" in p.computed and f"{macs:,}" in f.computed


def test_table2_templates_by_hand():
    # Eq. 4 worked by hand: ResNet's 256*64 + 9*64*64 + 64*256 and C=32, d=4
    assert audit.template_params(1, 64) == (69_632, 64)
    assert audit.template_params(32, 4) == (32 * (256 * 4 + 9 * 16 + 4 * 256), 128)
    assert audit.template_params(8, 14) == (8 * (256 * 14 + 9 * 196 + 14 * 256), 112)


def test_paddleclas_rule_covers_the_families():
    assert audit.paddleclas_widths(ARCHS["ResNeXt101_64x4d"])[:2] == (
        (256, 512, 1024, 2048), (256, 512, 1024, 2048))
    assert audit.paddleclas_widths(ARCHS["ResNeXt50_vd_32x4d"])[:2] == (
        (128, 256, 512, 1024), (256, 512, 1024, 2048))
    assert audit.paddleclas_widths(ARCHS["ResNeXt101_32x48d_wsl"])[:2] == (
        (1536, 3072, 6144, 12288), (256, 512, 1024, 2048))
    assert audit.paddleclas_widths(custom(cardinality=8, base_width=8)) is None


# --- the audit can fail ----------------------------------------------------------------------------
def test_a_wrong_paper_figure_fails(monkeypatch):
    monkeypatch.setattr(audit, "PAPER_TABLE1", (("ResNeXt-50 (32x4d)", "ResNeXt50_32x4d", 25.2, 4.4),))
    checks = audit.table1_checks()
    assert [c.holds for c in checks] == [False, False, True]
    assert "FAILS" in audit.format_audit(checks)


def test_engine_widths_that_break_the_rule_fail(monkeypatch):
    real = audit.param_shapes

    def tampered(config):
        shapes = real(config)
        w = shapes["layer2.0.conv2.weight"]
        shapes["layer2.0.conv2.weight"] = (w[0] + 32,) + tuple(w[1:])
        return shapes
    monkeypatch.setattr(audit, "param_shapes", tampered)
    (check,) = audit.width_checks(["ResNeXt50_32x4d"])
    assert not check.holds
    assert "DIFFERENT: (128, 288, 512, 1024)" in check.computed
    assert "layer2.1, layer2.2, layer2.3 DIFFER" in check.computed


def test_a_broken_branch_decomposition_fails(monkeypatch):
    real = audit.block_branches

    def drop_last_branch(x, params, block, config):
        form = real(x, params, block, config)
        return form._replace(total=form.total - form.branches[-1])
    monkeypatch.setattr(audit, "block_branches", drop_last_branch)
    check = audit.fig3_check()
    assert not check.holds


def test_fig3_on_a_strided_projection_block():
    check = audit.fig3_check(block="layer2.0")
    assert check.holds and "stride 2" in check.claim and "projection" in check.claim


# --- command -------------------------------------------------------------------------------------------
def test_audit_command(capsys):
    assert main(["audit", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["holds"] for r in rows)
    assert {"section", "claim", "paper", "computed", "tolerance", "holds"} <= set(rows[0])


def test_audit_command_errors_and_help(capsys):
    assert main(["audit", "--fig3-block", "layer9.0"]) == 2
    assert "no block 'layer9.0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    assert "example:" in capsys.readouterr().out


# --- Paddle lane: the counts from Paddle's own models ------------------------------------------------
@pytest.mark.paddle
def test_counts_match_paddle_vision(paddle):
    from paddle.vision.models import resnet50, resnext50_32x4d
    for arch, make in (("ResNet50", resnet50), ("ResNeXt50_32x4d", resnext50_32x4d)):
        model = make()
        model.eval()
        params = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
        macs = []

        def hook(layer, inputs, output):
            # conv: every weight value is used once per output pixel; fc: once
            pixels = int(np.prod(output.shape[2:])) if isinstance(layer, paddle.nn.Conv2D) else 1
            macs.append(int(np.prod(layer.weight.shape)) * pixels)
        for layer in model.sublayers():
            if isinstance(layer, (paddle.nn.Conv2D, paddle.nn.Linear)):
                layer.register_forward_post_hook(hook)
        with paddle.no_grad():
            model(paddle.zeros([1, 3, 224, 224]))
        from numpy_resnext.shapes import totals
        assert totals(ARCHS[arch]) == (params, sum(macs)) == FRAMEWORK_COUNTS[arch]


def test_se_claims_read_the_plans_se_layers(checks, monkeypatch):
    """Eq. 5 of Hu et al. equals the SE weights of the plan (2,514,944 for a 50-layer network,
    docs/se_resnext.md's figure); a plan with another SE width would fail it."""
    se = [c for c in checks if c.section == "SE"]
    assert len(se) == 2 and "2,514,944 in the plan's SE fc1/fc2 weights" in se[0].computed
    monkeypatch.setattr(audit, "SE_CLAIM", ("seresnext26d_32x4d",) + audit.SE_CLAIM[1:])
    assert not all(c.holds for c in audit.se_checks())          # 26 layers: far from 2.5M
