-- The reserves of a drawn round (DESIGN §4b): the ranks after the winners, from the same
-- shuffle, written in the draw's transaction; a forfeited prize goes to the next unused one.
CREATE TABLE round_reserves (
    campaign_id    TEXT NOT NULL,
    round          INTEGER NOT NULL,
    rank           INTEGER NOT NULL,
    ticket_id      UUID NOT NULL UNIQUE REFERENCES tickets (id),
    participant_id UUID NOT NULL REFERENCES participants (id),
    PRIMARY KEY (campaign_id, round, rank)
);
