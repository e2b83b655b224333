"""With `[strategy] book = true` the bot subscribes to each market's l2Book and hands every
book to the strategy, without READY waiting for it; without it, no book is asked for."""

from __future__ import annotations

import pytest

from hip3.api import Book, SimHarness, Strategy, run_on_sim

pytestmark = pytest.mark.e2e


class BookReader(Strategy):
    def __init__(self, ctx, params) -> None:
        super().__init__(ctx, params)
        self.books: list[Book] = []

    def on_book(self, book: Book) -> None:
        self.books.append(book)


@pytest.mark.parametrize("book", [True, False])
async def test_books_reach_the_strategy_only_when_asked_for(book):
    async with SimHarness(seed=3) as sim:
        summary, d = await run_on_sim(
            sim,
            duration_s=3,
            strategy=BookReader,
            markets=[{"coin": "xyz:AAA"}],
            strategy_options={"book": book},
        )
    books = d.strategy.books
    assert summary["reconciled"] is True and d.counters["unexpected_acks"] == 0
    if not book:
        assert books == []
        return
    assert len(books) >= 2, len(books)
    last = books[-1]
    assert last.coin == "xyz:AAA" and last.bids and last.asks
    assert [px for px, _ in last.bids] == sorted((px for px, _ in last.bids), reverse=True)
    assert [px for px, _ in last.asks] == sorted(px for px, _ in last.asks)
    assert last.bids[0][0] < last.asks[0][0]
