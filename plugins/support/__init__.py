"""Customer-service plugins: a pack a support team can adapt, and the guide's worked example.

- `orders` (orders.py): order status, items, shipping and tracking from an SQLite database,
  revealed only when the order number and the email address on it both match.
- `faq` (faq.py): answers from a knowledge-base collection with citations, or an honest
  "I don't know" with a hand-off offer.
- `tickets` (tickets.py): support tickets in SQLite; creating and updating them needs approval;
  the customer's photos and voice messages are attached as evidence.
- `handoff` (handoff.py): hands the conversation to a person: a packet (summary, customer,
  order, evidence, files, transcript) in a queue folder and/or table; the session is marked.

Each is registered through the `assistant.plugins` entry-point group like any third-party
plugin. `prompts/support_agent.md.j2` is a system prompt for a support deployment
(`[dialogue] system_prompt = "support_agent"`).
"""

from .faq import FAQ
from .handoff import Handoff
from .orders import Orders
from .tickets import Tickets

__all__ = ["FAQ", "Handoff", "Orders", "Tickets"]
