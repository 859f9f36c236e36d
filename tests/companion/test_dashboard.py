"""Latent dashboards (saelib.companion.dashboard) on a planted toy: known top context, promoted and
suppressed tokens, nearest latent, and HTML that fetches nothing."""
import re
from html.parser import HTMLParser

import pytest
import torch
from transformers import AutoTokenizer

from saelib.companion.dashboard import dashboard, latent_card
from saelib.data.harvest import Activations
from saelib.sae import SAE

D, M, N_SEQ, T = 8, 6, 6, 10


@pytest.fixture(scope="module")
def toy(tiny_lm):
    """code_j = relu(x_j) for j < 6; latent 5's decoder is latent 2's tilted by ~6 degrees; latent 4 never fires."""
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    ids = {w: tok.convert_tokens_to_ids(w) for w in ("the", "quick", "brown", "fox", "jumps", "cat", "dog", "mat")}
    sae = SAE(D, M, "relu", apply_b_dec_to_input=False)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(D)[:, :M])
        sae.b_enc.zero_()
        sae.W_dec.copy_(torch.eye(D)[:M] * 2)            # unequal norm from the encoder's: cosines, not dots
        sae.W_dec[5] = torch.nn.functional.normalize(torch.eye(D)[2] + 0.1 * torch.eye(D)[0], dim=0)
    g = torch.Generator().manual_seed(0)
    resid = -torch.rand(N_SEQ, T, D, generator=g) - 0.1           # nothing fires ...
    tokens = torch.full((N_SEQ, T), ids["mat"])
    for seq, pos, a in [(3, 6, 9.0), (3, 8, 5.0), (1, 2, 4.0), (4, 3, 1.0), (5, 9, 0.5)]:   # ... but these (latent 2)
        resid[seq, pos, 2] = a
    resid[0, 0, 2] = 100.0                                         # the attention sink: not kept, never shown
    resid[:, :, 0] = torch.where(torch.rand(N_SEQ, T, generator=g) < 0.5, 1.0, -1.0)   # latent 0: dense
    tokens[3, 3:8] = torch.tensor([ids[w] for w in ("the", "quick", "brown", "fox", "jumps")])
    keep = torch.ones(N_SEQ, T, dtype=torch.bool)
    keep[:, 0] = False
    W_U = torch.randn(len(tok), D, generator=g) * 0.1
    W_U[ids["cat"]] = 5 * torch.eye(D)[2]
    W_U[ids["dog"]] = -5 * torch.eye(D)[2]
    return sae, Activations(resid, tokens, keep), tok, W_U


def test_card_finds_the_planted_context_tokens_and_neighbour(toy):
    sae, acts, tok, W_U = toy
    card = latent_card(sae, acts, 2, tok, W_U, n_examples=3, window=(3, 1))
    assert [(e.seq, e.pos, e.activation) for e in card.examples] == [(3, 6, 9.0), (1, 2, 4.0), (4, 3, 1.0)]
    top = card.examples[0]
    assert (top.left, top.token, top.right) == (["the", "quick", "brown"], "fox", ["jumps"])
    assert card.n_tokens == N_SEQ * (T - 1) and card.n_fired == 5
    assert sorted(card.activations.tolist()) == [0.5, 1.0, 4.0, 5.0, 9.0]   # position 0 excluded
    assert card.density == pytest.approx(5 / 54)
    assert card.promoted[0][1] == "cat" and card.promoted[0][2] == pytest.approx(5.0)
    assert card.suppressed[0][1] == "dog" and card.suppressed[0][2] == pytest.approx(-5.0)
    assert len(card.promoted) == len(card.suppressed) == 8
    assert card.neighbours[0][0] == 5 and card.neighbours[0][1] == pytest.approx(1 / 1.01 ** 0.5, abs=1e-6)
    assert 2 not in [j for j, _ in card.neighbours] and len(card.neighbours) == 5


def test_never_firing_latent_densities_and_no_unembedding(toy):
    sae, acts, tok, _ = toy
    dens = torch.tensor([0.5, 0.0, 5 / 54, 0.0, 0.0, 0.01])
    dash = dashboard(sae, acts, [4, 2], tok, densities=dens, titles={2: "planted"})
    dead, planted = dash.cards
    assert dead.examples == [] and dead.n_fired == 0 and dead.denser_than == 0.0
    assert planted.denser_than == pytest.approx(4 / 6) and planted.title == "planted"
    assert planted.promoted == [] and planted.suppressed == []
    page = dash.html()
    assert "never fires" in page and "data:image/png" in page and "promotes" not in page


class _Refs(HTMLParser):
    """Every tag and every URL-bearing attribute of a page."""

    def __init__(self):
        super().__init__()
        self.tags, self.urls = set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "srcset", "action", "data", "poster")]


def test_html_is_self_contained_and_saved_beside_the_figures(toy):
    sae, acts, tok, W_U = toy
    dash = dashboard(sae, acts, [2, 5, 0], tok, W_U, title="toy <dashboard>")
    page = dash.html()
    refs = _Refs()
    refs.feed(page)
    assert refs.tags.isdisjoint({"script", "link", "style", "iframe", "object", "embed"})
    assert refs.urls and all(u.startswith("data:image/png;base64,") or re.fullmatch(r"#d[0-9a-f]{6}-latent-\d+", u)
                             for u in refs.urls)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)   # base64 may spell anything
    assert "http" not in text and "url(" not in text and "@import" not in text
    link = re.search(r"<a href='#(d[0-9a-f]{6}-latent-)5'>5</a>", page)   # a neighbour on the page links to its card
    assert link and f"id='{link.group(1)}5'" in page and dashboard(sae, acts, [2, 5], tok).html().count(link.group(1)) == 0
    assert "toy &lt;dashboard&gt;" in page            # titles are escaped
    assert dash._repr_html_() in page and latent_card(sae, acts, 2, tok, W_U)._repr_html_().startswith("<div id='latent-2'")
    path = dash.save("99_test", "dashboard")
    assert path.name == "dashboard.html" and path.parent.name == "99_test" and path.read_text() == page


def test_bad_arguments_name_the_parameter(toy):
    sae, acts, tok, W_U = toy
    with pytest.raises(ValueError, match="latents"):
        dashboard(sae, acts, [], tok)
    with pytest.raises(ValueError, match=r"latents\[i\] must be in \[0, 5\]"):
        latent_card(sae, acts, 6, tok)
    with pytest.raises(TypeError, match="latents"):
        latent_card(sae, acts, 2.0, tok)
    with pytest.raises(ValueError, match="W_U must be"):
        latent_card(sae, acts, 2, tok, W_U[:, :5])
    with pytest.raises(ValueError, match="densities must be"):
        latent_card(sae, acts, 2, tok, densities=torch.zeros(3))
    with pytest.raises(ValueError, match="n_examples"):
        latent_card(sae, acts, 2, tok, n_examples=-1)
    with pytest.raises(ValueError, match="name must be"):
        dashboard(sae, acts, [2], tok).save("99_test", "a/b")


def _render_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "render_dashboard.py"
    spec = importlib.util.spec_from_file_location("render_dashboard", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(_render_script().find_browser() is None, reason="no Chromium installed (apt-get install chromium)")
def test_dashboard_renders_in_headless_chromium(toy, tmp_path):
    """The page drawn by a real browser with no network: the token highlight and the histogram's bars show."""
    import numpy as np
    from PIL import Image

    sae, acts, tok, W_U = toy
    page = tmp_path / "dash.html"
    page.write_text(dashboard(sae, acts, [2, 0], tok, W_U).html(), encoding="utf-8")
    png = _render_script().screenshot(page, tmp_path / "dash.png", width=900, height=1500)
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    def n_pixels(hex_colour):
        return int((np.abs(rgb - [int(hex_colour[i: i + 2], 16) for i in (1, 3, 5)]).sum(-1) < 12).sum())
    assert n_pixels("#fdb863") > 500      # the highlighted top tokens (examples_html)
    assert n_pixels("#0173b2") > 500      # the histogram's bars: the base64 PNG was decoded
    assert n_pixels("#d9f0d3") > 200 and n_pixels("#f6d3d3") > 200   # promoted and suppressed chips
    assert 200 < rgb.shape[0] < 1500      # cropped to the content


def test_text_repr_is_short(toy):
    """A notebook stores repr() as the output's text/plain beside the HTML: a line, not every example."""
    sae, acts, tok, W_U = toy
    dash = dashboard(sae, acts, [2, 5], tok, W_U, title="toy")
    assert repr(dash) == "Dashboard('toy', latents [2, 5])"
    assert repr(dash.cards[0]) == f"LatentCard(latent=2, density={5 / 54:.3g}, 4 examples)"   # one per sequence
