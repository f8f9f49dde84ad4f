"""The page checks themselves, in the browser: a page with each defect is caught, a clean one passes."""

from sarcomri.report.embed import data_uri

# a 1 x 1 grey PNG
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010800000000"
                      "3a7e9b550000000a49444154789c6360000000020001e221bc330000000049454e44ae426082")


def _page(tmp_path, body: str):
    path = tmp_path / "page.html"
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{body}</body></html>")
    return path


def test_a_clean_page_passes(checks, tmp_path):
    page, failed = checks.open(_page(tmp_path, f"<img src='{data_uri(PIXEL, 'image/png')}'>"
                               "<table><tr><th>AUC (95% CI)</th></tr><tr><td>0.87 (0.79-0.94)</td>"
                               "</tr></table><p>version 1.2.3, p = 0.0312</p>"))
    assert checks.broken_images(page) == [] and failed == []
    assert checks.horizontal_overflow(page) == 0
    assert checks.long_floats(page) == []
    assert checks.code_style_headers(page) == []
    assert checks.keep_screenshot(page, "pagechecks-clean").stat().st_size > 0


def test_each_defect_is_caught(checks, tmp_path):
    page, failed = checks.open(_page(tmp_path, "<img src='missing.png'><img src='https://example.org/x.png'>"
                               "<div style='width:2000px'>wide</div><p>AUC 0.873421</p>"
                               "<table><tr><th>auc_mean</th><th>rrrc</th><th>modality1</th>"
                               "<th>AUC</th></tr></table>"))
    assert checks.broken_images(page) == ["missing.png", "https://example.org/x.png"]
    assert any(url.startswith("https://example.org") for url in failed)  # the network is off
    assert checks.horizontal_overflow(page) > 700
    assert checks.long_floats(page) == ["0.873421"]
    assert checks.code_style_headers(page) == ["auc_mean", "rrrc", "modality1"]
