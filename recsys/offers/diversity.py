"""The diversity rule: at most so many offers of one department and of one offer type in the top k."""

from __future__ import annotations


def diverse_top(
    order: list[int], prepared, k: int, max_per_department: int, max_per_type: int
) -> tuple[list[int], list[int]]:
    """Greedy top k of ``order`` (eligible offers, best first) under the department and
    offer-type caps: (chosen, fill). When too few offers satisfy the caps, ``fill`` holds the
    skipped offers, best first, that complete the k; they rank after every chosen one.

    ``prepared`` is a :class:`recsys.offers.prepared.PreparedOffers` (its integer codes of
    departments and types).
    """
    dept, blank, types = prepared.department_code, prepared.department_blank, prepared.type_code
    per_dept = [0] * prepared.n_departments
    per_type = [0] * prepared.n_types
    full_types = full_depts = 0
    chosen, skipped = [], []
    for j in order:
        d, t = dept[j], types[j]
        if (not blank[j] and per_dept[d] >= max_per_department) or per_type[t] >= max_per_type:
            if len(skipped) < k:
                skipped.append(j)
            # once no further offer can be chosen, the skipped ones fill the rest
            if len(skipped) >= k - len(chosen) and (
                full_types == prepared.n_types
                or (full_depts == prepared.n_departments and not prepared.any_blank_department)
            ):
                break
            continue
        chosen.append(j)
        if len(chosen) == k:
            break
        per_dept[d] += 1
        per_type[t] += 1
        full_types += per_type[t] == max_per_type
        full_depts += not blank[j] and per_dept[d] == max_per_department
    return chosen, skipped[: k - len(chosen)]
