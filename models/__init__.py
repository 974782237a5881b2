"""Domain types and repositories (all SQL lives here)."""

from models.types import CATEGORIES, Brief, CaseStudy, Seller

__all__ = ["CATEGORIES", "Brief", "CaseStudy", "Seller"]
