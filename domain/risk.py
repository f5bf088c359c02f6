"""Risk = impact x likelihood, looked up in the policy's matrix (seed 002's by default)."""

from __future__ import annotations

from collections.abc import Mapping

from domain.enums import Impact, Likelihood, Risk

RiskMatrix = Mapping[Likelihood, Mapping[Impact, Risk]]

# Seed process 002: rows are likelihood, columns impact.
DEFAULT_RISK_MATRIX: dict[Likelihood, dict[Impact, Risk]] = {
    Likelihood.HIGH: {
        Impact.LOW: Risk.MEDIUM,
        Impact.MEDIUM: Risk.HIGH,
        Impact.HIGH: Risk.CRITICAL,
        Impact.CRITICAL: Risk.CRITICAL,
    },
    Likelihood.MEDIUM: {
        Impact.LOW: Risk.LOW,
        Impact.MEDIUM: Risk.MEDIUM,
        Impact.HIGH: Risk.HIGH,
        Impact.CRITICAL: Risk.CRITICAL,
    },
    Likelihood.LOW: {
        Impact.LOW: Risk.LOW,
        Impact.MEDIUM: Risk.LOW,
        Impact.HIGH: Risk.MEDIUM,
        Impact.CRITICAL: Risk.HIGH,
    },
}

RISK_ORDER: tuple[Risk, ...] = (Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL)


def assess_risk(matrix: RiskMatrix, *, impact: Impact, likelihood: Likelihood) -> Risk:
    return matrix[likelihood][impact]


def risk_rank(risk: Risk) -> int:
    return RISK_ORDER.index(risk)
