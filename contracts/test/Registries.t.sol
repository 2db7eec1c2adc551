// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {Roles, Guarded} from "../src/Roles.sol";
import {NodeCertRegistry} from "../src/NodeCertRegistry.sol";
import {DatasetRegistry} from "../src/DatasetRegistry.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";

contract RegistriesTest is Fixture {
    bytes32 constant N2 = bytes32(uint256(2));

    function testRegisterAndViews() public view {
        NodeCertRegistry.Node memory n = registry.getNode(NODE);
        assertEq(n.operator, operator, "operator");
        assertEq(n.gpuCount, 8, "gpus");
        assertEq(n.stake, MIN_STAKE, "stake");
        assertTrue(n.certified && n.active, "certified");
        assertTrue(registry.isEligible(NODE), "eligible");
        assertEq(registry.nodeCount(), 1, "count");
        assertEq(registry.nodeIdAt(0), NODE, "id");
        assertEq(registry.operatorOf(NODE), operator, "operatorOf");
    }

    function testRegisterReverts() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NodeExists.selector, NODE));
        registry.register{value: MIN_STAKE}(NODE, 1, 1, 1, "x", bytes32(0));
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.StakeTooLow.selector, 1, MIN_STAKE));
        registry.register{value: 1}(N2, 1, 1, 1, "x", bytes32(0));
        vm.prank(operator);
        vm.expectRevert(NodeCertRegistry.InvalidCapabilities.selector);
        registry.register{value: MIN_STAKE}(N2, 65, 1, 1, "x", bytes32(0));
        vm.prank(operator);
        vm.expectRevert(NodeCertRegistry.InvalidCapabilities.selector);
        registry.register{value: MIN_STAKE}(N2, 1, 0, 1, "x", bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.UnknownNode.selector, N2));
        registry.getNode(N2);
    }

    function testCertificationIsForAttestors() public {
        bytes32 ATT = registry.ATTESTOR();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, ATT, stranger));
        registry.certify(NODE);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, ATT, stranger));
        registry.revoke(NODE);
        vm.prank(attestor);
        registry.revoke(NODE);
        assertTrue(!registry.isEligible(NODE), "revoked");
        vm.prank(attestor);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.UnknownNode.selector, N2));
        registry.certify(N2);
    }

    function testReputationAndSlashAreForTheSlasher() public {
        bytes32 SL = registry.SLASHER();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, SL, stranger));
        registry.adjustReputation(NODE, 1);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, SL, stranger));
        registry.slash(NODE, 1, stranger);
        registry.grantRole(registry.SLASHER(), admin);
        registry.adjustReputation(NODE, 5);
        registry.adjustReputation(NODE, -9);
        assertEq(registry.getNode(NODE).reputation, 0, "floored at zero");
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.SlashExceedsStake.selector, 2 ether, MIN_STAKE));
        registry.slash(NODE, 2 ether, stranger);
        registry.slash(NODE, 0.25 ether, stranger);
        assertEq(stranger.balance, 0.25 ether, "slashed stake sent");
        assertTrue(!registry.isEligible(NODE), "slashed node loses its certificate");
    }

    function testDeregisterThenWithdrawAfterUnbonding() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NotOperator.selector, NODE, stranger));
        registry.deregister(NODE);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NotDeregistered.selector, NODE));
        registry.withdraw(NODE);
        vm.prank(operator);
        registry.deregister(NODE);
        assertTrue(!registry.isEligible(NODE), "inactive");
        uint64 until = registry.getNode(NODE).unbondingAt;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.StillBonded.selector, until));
        registry.withdraw(NODE);
        vm.warp(until);
        uint256 before = operator.balance;
        vm.prank(operator);
        registry.withdraw(NODE);
        assertEq(operator.balance - before, MIN_STAKE, "stake returned");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NotOperator.selector, NODE, stranger));
        registry.withdraw(NODE);
    }

    function testRolesAreAdminManaged() public {
        bytes32 ADM = registry.ADMIN();
        bytes32 ATT = registry.ATTESTOR();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, ADM, stranger));
        registry.grantRole(ATT, stranger);
        registry.grantRole(ATT, stranger);
        assertTrue(registry.hasRole(registry.ATTESTOR(), stranger), "granted");
        registry.revokeRole(registry.ATTESTOR(), stranger);
        assertTrue(!registry.hasRole(registry.ATTESTOR(), stranger), "revoked");
    }

    function testDatasets() public {
        vm.prank(stranger);
        datasets.register(bytes32("d1"), bytes32("cid"), bytes32("lic"), 1024, "nlp,english");
        DatasetRegistry.Dataset memory d = datasets.get(bytes32("d1"));
        assertEq(d.owner, stranger, "owner");
        assertEq(d.contentId, bytes32("cid"), "content");
        assertEq(datasets.count(), 1, "count");
        assertEq(datasets.idAt(0), bytes32("d1"), "idAt");
        vm.expectRevert(abi.encodeWithSelector(DatasetRegistry.DatasetExists.selector, bytes32("d1")));
        datasets.register(bytes32("d1"), bytes32("cid"), bytes32(0), 1, "");
        vm.expectRevert(DatasetRegistry.InvalidDataset.selector);
        datasets.register(bytes32("d2"), bytes32(0), bytes32(0), 1, "");
        vm.expectRevert(abi.encodeWithSelector(DatasetRegistry.UnknownDataset.selector, bytes32("zz")));
        datasets.get(bytes32("zz"));
    }

    function testModelsAndLineage() public {
        datasets.register(bytes32("d1"), bytes32("cid"), bytes32(0), 1, "");
        bytes32 REG = models.REGISTRAR();
        vm.prank(stranger);
        models.register(bytes32("m1"), bytes32("w1"), "mlp", bytes32("d1"), bytes32("code"), "v1", bytes32(0), bytes32(0));
        // A model produced by a job: only the registrar (the engine).
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, REG, stranger));
        models.register(bytes32("m2"), bytes32("w2"), "mlp", bytes32("d1"), bytes32("code"), "v2", bytes32("m1"), bytes32("job"));
        models.register(bytes32("m2"), bytes32("w2"), "mlp", bytes32("d1"), bytes32("code"), "v2", bytes32("m1"), bytes32("job"));
        models.register(bytes32("m3"), bytes32("w3"), "mlp", bytes32(0), bytes32("code"), "v3", bytes32("m2"), bytes32(0));
        bytes32[] memory chain = models.lineage(bytes32("m3"));
        assertEq(chain.length, 3, "lineage length");
        assertEq(chain[0], bytes32("m3"), "self first");
        assertEq(chain[2], bytes32("m1"), "root last");
        assertEq(models.get(bytes32("m2")).jobId, bytes32("job"), "producing job");
        assertEq(models.count(), 3, "count");
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ModelExists.selector, bytes32("m1")));
        models.register(bytes32("m1"), bytes32("w"), "a", bytes32(0), bytes32(0), "v", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownParent.selector, bytes32("nope")));
        models.register(bytes32("m4"), bytes32("w"), "a", bytes32(0), bytes32(0), "v", bytes32("nope"), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownDataset.selector, bytes32("nope")));
        models.register(bytes32("m4"), bytes32("w"), "a", bytes32("nope"), bytes32(0), "v", bytes32(0), bytes32(0));
        vm.expectRevert(ModelRegistry.InvalidModel.selector);
        models.register(bytes32("m4"), bytes32(0), "a", bytes32(0), bytes32(0), "v", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, bytes32("zz")));
        models.lineage(bytes32("zz"));
    }
}
