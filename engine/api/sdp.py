"""SDP helpers for controllers and the console: offers, answers, hold and resume."""

from engine.ua.sdp_answer import OfferError, answer_sdp, offer_sdp, set_direction

__all__ = ["OfferError", "answer_sdp", "offer_sdp", "set_direction"]
