import pytest
import torch

from orchestrator.export import export_onnx, export_torch, load_runner


@pytest.mark.parametrize("export", [export_onnx, export_torch], ids=["onnx", "torch"])
def test_artifact_gives_the_models_outputs_at_any_batch_size(export, digits_baseline, digits_data, tmp_path):
    model = digits_baseline.model
    suffix = ".onnx" if export is export_onnx else ".pt2"
    path = export(model, digits_data.test[0][:4], tmp_path / f"m{suffix}")
    run = load_runner(path)
    for n in (1, 7, 300):
        x = digits_data.test[0][:n]
        with torch.no_grad():
            assert torch.allclose(run(x), model(x), atol=1e-4)


def test_export_is_silent(digits_baseline, digits_data, tmp_path, capfd):
    export_onnx(digits_baseline.model, digits_data.test[0][:4], tmp_path / "m.onnx")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_unknown_artifact_type_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown artifact type '.bin'"):
        load_runner(tmp_path / "model.bin")
