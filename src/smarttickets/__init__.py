"""SmartTickets: ticketing for high-demand concerts that beats bots and scalpers."""
__version__ = "0.1.0"
