"""GoRec: Bai, Hou, Wu, Zhang, Chen & Wang, "GoRec: A Generative Cold-start Recommendation Framework", ACM MM 2023.

A conditional VAE models the distribution of a warm item's backbone vector V_i given its content c_i:
- encoder q(z | V_i, c_i) = N(μ_q, σ_q²), content prior p(z | c_i) = N(μ_p, σ_p²), decoder D(z, c_i);
- loss = ||D(z, c̃_i) − V_i||² + β KL(q || p) + λ L_uni(μ_q), with z ~ q by reparameterisation, c̃
  the content under dropout, and L_uni = log mean_{i≠j} exp(−2 ||μ̂_i − μ̂_j||²) the uniformity of
  the normalised posterior means (Wang & Isola 2020), GoRec's "uniformity-enhanced" objective that
  keeps the latent space spread out and informative.
Inference is generative: a cold item has no V_i, so z is read from its content prior (its mean μ_p)
and decoded, D(μ_p(c_i), c_i); warm items keep the backbone's vectors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from motorec.config import NonNegativeFloat, PositiveInt, Probability
from motorec.models.base import register_model
from motorec.models.coldstart.common import ColdStartRecommender, SpecialistParams, mlp, warm_cold_readout
from motorec.models.context import ModelContext


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(μ_q, σ_q²) || N(μ_p, σ_p²)) summed over latent dimensions, per row."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1).sum(-1)


def uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """log mean_{i≠j} exp(−t ||x̂_i − x̂_j||²) of the L2-normalised rows (lower = more uniform)."""
    x = F.normalize(x, dim=-1)
    sq = torch.cdist(x, x).pow(2)
    off = ~torch.eye(len(x), dtype=torch.bool, device=x.device)
    return torch.logsumexp(-t * sq[off], dim=0) - torch.log(torch.tensor(float(off.sum()), device=x.device))


class GoRecParams(SpecialistParams):
    latent_dim: PositiveInt  # size of z
    beta: NonNegativeFloat  # KL(q(z|V,c) || p(z|c)) weight
    uniformity: NonNegativeFloat  # weight of the uniformity loss on the posterior means
    content_dropout: Probability  # dropout on the decoder's content input


@register_model("gorec")
class GoRec(ColdStartRecommender):
    """A conditional VAE of warm item vectors given content; cold items are decoded from the content prior."""

    Params = GoRecParams

    def __init__(self, ctx: ModelContext, params: GoRecParams) -> None:
        super().__init__(ctx, params)
        d, c, z, hidden = self.backbone_dim, self.content_dim, self.params.latent_dim, self.params.hidden
        self.encoder = mlp([d + c, *hidden, 2 * z])
        self.prior = mlp([c, *hidden, 2 * z])
        self.decoder = mlp([z + c, *hidden, d])
        self.content_dropout = nn.Dropout(self.params.content_dropout)

    def generate(self, content: torch.Tensor) -> torch.Tensor:
        """Decoded vector at the content prior's mean (the cold-item inference path)."""
        mu_p = self.prior(content).chunk(2, dim=-1)[0]
        return self.decoder(torch.cat([mu_p, content], dim=-1))

    def calculate_loss(self, users, pos, neg):
        items = torch.unique(torch.cat([pos, neg]))
        warm, content = self.item_warm[items], self.content[items]
        mu_q, logvar_q = self.encoder(torch.cat([warm, content], dim=-1)).chunk(2, dim=-1)
        mu_p, logvar_p = self.prior(content).chunk(2, dim=-1)
        z = mu_q + torch.randn_like(mu_q) * (0.5 * logvar_q).exp()
        rec = (self.decoder(torch.cat([z, self.content_dropout(content)], dim=-1)) - warm).pow(2).sum(-1).mean()
        kl = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).mean()
        uni = uniformity(mu_q)
        p = self.params
        return {"loss": rec + p.beta * kl + p.uniformity * uni, "reconstruction": rec, "kl": kl, "uniformity": uni}

    def final_vectors(self):
        return warm_cold_readout(self.user_warm, self.item_warm, self.generate(self.content), self.isolated)
