-- A block-range index of the clicks' times: the click consumer reads a partition's last minutes
-- of clicks when it takes the partition (services/analytics/event_window.h), and the rows arrive
-- in about time order, so a few pages of summary find them. It costs the inserts next to nothing,
-- unlike a B-tree. Monthly partitions attached later get it too.
CREATE INDEX clicks_time_brin ON clicks USING brin (click_time);
